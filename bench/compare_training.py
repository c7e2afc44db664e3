#!/usr/bin/python3
"""Local training: LibTorch (Model::Train) against PyTorch eager.

Runs build-bench/bench/training_bench and bench/pytorch_training.py
alternately, `--repetitions` times per model (the side that goes first
alternates between repetitions so slow drifts in machine load hit both),
and prints a table of median samples/s and the ratio LibTorch / PyTorch
(target >= 1.0), then every individual run.

  make bench
  /usr/bin/python3 bench/compare_training.py [--repetitions 3]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def run_libtorch(binary: str, model: str, cnn_calls: int, mlp_calls: int) -> tuple:
    out = subprocess.run(
        [binary, f"--benchmark_filter=BM_Train/{model}/", "--benchmark_format=json",
         f"--cnn_calls={cnn_calls}", f"--mlp_calls={mlp_calls}"],
        check=True, capture_output=True, text=True,
        env=dict(os.environ, OPENBLAS_NUM_THREADS="1")).stdout
    runs = json.loads(out)["benchmarks"]
    if len(runs) != 1 or "error_message" in runs[0]:
        sys.exit(f"training_bench {model}: unexpected output {runs}")
    cpu_seconds = runs[0]["cpu_time"] * runs[0]["iterations"] / 1e3  # time_unit is ms
    return runs[0]["samples_per_s"], runs[0]["samples"] / cpu_seconds


def run_pytorch(python: str, model: str, cnn_calls: int, mlp_calls: int) -> tuple:
    out = subprocess.run(
        [python, os.path.join(HERE, "pytorch_training.py"), "--model", model,
         "--cnn-calls", str(cnn_calls), "--mlp-calls", str(mlp_calls)],
        check=True, capture_output=True, text=True,
        env=dict(os.environ, OPENBLAS_NUM_THREADS="1")).stdout
    result = json.loads(out.strip().splitlines()[-1])
    return result["samples_per_s"], result["cpu_samples_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", default=os.path.join(ROOT, "build-bench", "bench",
                                                         "training_bench"))
    parser.add_argument("--python", default="/usr/bin/python3",
                        help="an interpreter with torch (Debian's python3-torch)")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--models", default="cnn,mlp")
    parser.add_argument("--cnn-calls", type=int, default=5,
                        help="timed 600-sample epochs per run for the CNN")
    parser.add_argument("--mlp-calls", type=int, default=100,
                        help="timed 600-sample epochs per run for the MLP")
    args = parser.parse_args()

    models = args.models.split(",")
    # results[model][side] = list of (wall-clock samples/s, CPU-time samples/s)
    results = {m: {"libtorch": [], "pytorch": []} for m in models}
    for rep in range(args.repetitions):
        for model in models:
            sides = ["libtorch", "pytorch"] if rep % 2 == 0 else ["pytorch", "libtorch"]
            for side in sides:
                if side == "libtorch":
                    value = run_libtorch(args.binary, model, args.cnn_calls, args.mlp_calls)
                else:
                    value = run_pytorch(args.python, model, args.cnn_calls, args.mlp_calls)
                results[model][side].append(value)
                print(f"  rep {rep + 1} {model:4} {side:9} {value[0]:10.1f} samples/s "
                      f"(CPU time: {value[1]:10.1f})", file=sys.stderr, flush=True)

    def median(model, side, column):
        return statistics.median(v[column] for v in results[model][side])

    print(f"{'model':6} {'LibTorch samples/s':>19} {'PyTorch samples/s':>18} {'ratio':>6}"
          f"   {'ratio by CPU time':>17}")
    for model in models:
        lt, pt = median(model, "libtorch", 0), median(model, "pytorch", 0)
        lt_cpu, pt_cpu = median(model, "libtorch", 1), median(model, "pytorch", 1)
        print(f"{model:6} {lt:19.1f} {pt:18.1f} {lt / pt:6.2f}   {lt_cpu / pt_cpu:17.2f}")
    print(f"\nmedians of {args.repetitions} interleaved runs each (wall clock); ratio = "
          f"LibTorch / PyTorch (target >= 1.0); samples per run: cnn {args.cnn_calls * 600}, "
          f"mlp {args.mlp_calls * 600}")
    for model in models:
        lt = [round(v[0]) for v in results[model]["libtorch"]]
        pt = [round(v[0]) for v in results[model]["pytorch"]]
        ratios = ", ".join(f"{a / b:.2f}" for a, b in zip(lt, pt))
        print(f"{model}: LibTorch {lt}, PyTorch {pt}, per-repetition ratios {ratios}")


if __name__ == "__main__":
    main()

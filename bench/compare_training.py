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


def run_libtorch(binary: str, model: str, cnn_calls: int, mlp_calls: int) -> float:
    out = subprocess.run(
        [binary, f"--benchmark_filter=BM_Train/{model}/", "--benchmark_format=json",
         f"--cnn_calls={cnn_calls}", f"--mlp_calls={mlp_calls}"],
        check=True, capture_output=True, text=True,
        env=dict(os.environ, OPENBLAS_NUM_THREADS="1")).stdout
    runs = json.loads(out)["benchmarks"]
    if len(runs) != 1 or "error_message" in runs[0]:
        sys.exit(f"training_bench {model}: unexpected output {runs}")
    return runs[0]["samples_per_s"]


def run_pytorch(python: str, model: str, cnn_calls: int, mlp_calls: int) -> float:
    out = subprocess.run(
        [python, os.path.join(HERE, "pytorch_training.py"), "--model", model,
         "--cnn-calls", str(cnn_calls), "--mlp-calls", str(mlp_calls)],
        check=True, capture_output=True, text=True,
        env=dict(os.environ, OPENBLAS_NUM_THREADS="1")).stdout
    return json.loads(out.strip().splitlines()[-1])["samples_per_s"]


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
                print(f"  rep {rep + 1} {model:4} {side:9} {value:12.1f} samples/s",
                      file=sys.stderr, flush=True)

    print(f"{'model':6} {'LibTorch samples/s':>19} {'PyTorch samples/s':>18} {'ratio':>6}")
    for model in models:
        lt = statistics.median(results[model]["libtorch"])
        pt = statistics.median(results[model]["pytorch"])
        print(f"{model:6} {lt:19.1f} {pt:18.1f} {lt / pt:6.2f}")
    print(f"\nmedians of {args.repetitions} interleaved runs each; ratio = LibTorch / PyTorch "
          f"(target >= 1.0); samples per run: cnn {args.cnn_calls * 600}, "
          f"mlp {args.mlp_calls * 600}")
    for model in models:
        pairs = zip(results[model]["libtorch"], results[model]["pytorch"])
        ratios = ", ".join(f"{a / b:.2f}" for a, b in pairs)
        print(f"{model}: LibTorch {[round(v, 1) for v in results[model]['libtorch']]}, "
              f"PyTorch {[round(v, 1) for v in results[model]['pytorch']]}, "
              f"per-repetition ratios {ratios}")


if __name__ == "__main__":
    main()

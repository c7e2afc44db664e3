#!/usr/bin/python3
"""Local training: LibTorch (Model::Train) against PyTorch eager.

Runs build-bench/bench/training_bench and bench/pytorch_training.py
alternately, `--repetitions` times per model (the order of the sides rotates
between repetitions so that drifts in machine load hit all of them), and
prints a table of median samples/s and the ratio LibTorch / PyTorch (target
>= 1.0), then every individual run. Both sides train the same samples: one
warm-up epoch, then `--cnn-calls` / `--mlp-calls` epochs of 600 samples.

--malloc-variants adds two sides that isolate glibc malloc's share:
  libtorch-default-malloc  training_bench with glibc's default (adaptive)
                           thresholds, i.e. without the mallopt() call of
                           models/torch_model.cc (any glibc.malloc.* tunable in
                           GLIBC_TUNABLES disables it; glibc.malloc.check=0
                           changes nothing else);
  pytorch-tuned-malloc     PyTorch with the thresholds that call sets
                           (mmap 32 MiB, trim 128 MiB) through GLIBC_TUNABLES.

  make bench
  /usr/bin/python3 bench/compare_training.py [--repetitions 3] [--malloc-variants]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def run_libtorch(binary, model, cnn_calls, mlp_calls, extra_env=None):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", **(extra_env or {}))
    out = subprocess.run(
        [binary, f"--benchmark_filter=BM_Train/{model}/", "--benchmark_format=json",
         f"--cnn_calls={cnn_calls}", f"--mlp_calls={mlp_calls}"],
        check=True, capture_output=True, text=True, env=env).stdout
    runs = json.loads(out)["benchmarks"]
    if len(runs) != 1 or "error_message" in runs[0]:
        sys.exit(f"training_bench {model}: unexpected output {runs}")
    run = runs[0]
    cpu_seconds = run["cpu_time"] * run["iterations"] / 1e3  # time_unit is ms
    return run["samples_per_s"], run["samples"] / cpu_seconds


def run_pytorch(python, model, cnn_calls, mlp_calls, extra_env=None):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", **(extra_env or {}))
    out = subprocess.run(
        [python, os.path.join(HERE, "pytorch_training.py"), "--model", model,
         "--cnn-calls", str(cnn_calls), "--mlp-calls", str(mlp_calls)],
        check=True, capture_output=True, text=True, env=env).stdout
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
    parser.add_argument("--malloc-variants", action="store_true",
                        help="also run LibTorch with glibc's default malloc thresholds and "
                             "PyTorch with the thresholds LibTorch sets")
    args = parser.parse_args()

    runners = {
        "libtorch": lambda m: run_libtorch(args.binary, m, args.cnn_calls, args.mlp_calls),
        "pytorch": lambda m: run_pytorch(args.python, m, args.cnn_calls, args.mlp_calls),
    }
    if args.malloc_variants:
        runners["libtorch-default-malloc"] = lambda m: run_libtorch(
            args.binary, m, args.cnn_calls, args.mlp_calls,
            {"GLIBC_TUNABLES": "glibc.malloc.check=0"})
        runners["pytorch-tuned-malloc"] = lambda m: run_pytorch(
            args.python, m, args.cnn_calls, args.mlp_calls,
            {"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=33554432:"
                               "glibc.malloc.trim_threshold=134217728"})
    sides = list(runners)
    models = args.models.split(",")
    # results[model][side] = list of (wall-clock samples/s, CPU-time samples/s)
    results = {m: {s: [] for s in sides} for m in models}
    for rep in range(args.repetitions):
        for model in models:
            shift = rep % len(sides)
            for side in sides[shift:] + sides[:shift]:
                value = runners[side](model)
                results[model][side].append(value)
                print(f"  rep {rep + 1} {model:4} {side:24} {value[0]:10.1f} samples/s "
                      f"(by CPU time {value[1]:10.1f})", file=sys.stderr, flush=True)

    def median(model, side, column):
        return statistics.median(v[column] for v in results[model][side])

    print(f"{'model':6} {'LibTorch samples/s':>19} {'PyTorch samples/s':>18} {'ratio':>6}"
          f" {'ratio by CPU time':>18}")
    for model in models:
        lt, pt = median(model, "libtorch", 0), median(model, "pytorch", 0)
        lt_cpu, pt_cpu = median(model, "libtorch", 1), median(model, "pytorch", 1)
        print(f"{model:6} {lt:19.1f} {pt:18.1f} {lt / pt:6.2f} {lt_cpu / pt_cpu:18.2f}")
    if args.malloc_variants:
        print("\nmalloc variants (ratio against PyTorch with default malloc, and the same "
              "malloc thresholds on both sides):")
        print(f"{'model':6} {'side':24} {'samples/s':>10} {'ratio':>6}")
        for model in models:
            pt = median(model, "pytorch", 0)
            for side in ("libtorch-default-malloc", "pytorch-tuned-malloc"):
                v = median(model, side, 0)
                print(f"{model:6} {side:24} {v:10.1f} {v / pt:6.2f}")
            same = median(model, "libtorch", 0) / median(model, "pytorch-tuned-malloc", 0)
            print(f"{model:6} {'both tuned: LibTorch / PyTorch':35} {same:6.2f}")
    print(f"\nmedians of {args.repetitions} interleaved runs per side (wall clock unless "
          f"stated); ratio = LibTorch / PyTorch (target >= 1.0); samples per run: "
          f"cnn {args.cnn_calls * 600}, mlp {args.mlp_calls * 600}")
    for model in models:
        for side in sides:
            values = [round(v[0]) for v in results[model][side]]
            print(f"{model} {side}: {values}")


if __name__ == "__main__":
    main()

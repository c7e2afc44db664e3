#!/usr/bin/python3
"""Accuracy of the aggregation strategies, with and without attackers.

Runs `samverka simulate` (Fashion-MNIST, mlp, 100 clients, 10 per round,
dirichlet:0.5, one worker, so every run is bit-reproducible) for each
setting and seed, at most `--jobs` at a time under `nice -n 10`, and prints
markdown tables of the test accuracy at the last round (per seed and the
mean, and the mean over the last five rounds, which is less noisy than one
round under non-IID data), plus the exact command of every setting. Runs whose OUT/metrics.csv
already has all rounds are not run again.

  /usr/bin/python3 bench/strategy_accuracy.py --suite grid    # server lr / mu grid, seed 1
  /usr/bin/python3 bench/strategy_accuracy.py --suite strategies --seeds 1 2 3
  /usr/bin/python3 bench/strategy_accuracy.py --suite attack --seeds 1 2 3
"""
import argparse
import concurrent.futures
import csv
import os
import shlex
import statistics
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

BASE = ["simulate", "--dataset", "fashion-mnist", "--model", "mlp", "--clients", "100",
        "--clients-per-round", "10", "--partition", "dirichlet:0.5", "--workers", "1",
        "--lr", "0.05", "--momentum", "0", "--batch-size", "32", "--local-epochs", "1",
        "--secure-aggregation", "off"]  # the runs in docs/performance.md were plain

# name -> extra flags. The chosen settings of the "strategies" suite come
# from the "grid" suite (seed 1, 50 rounds); see docs/performance.md.
GRID = {
    "fedavg": ["--strategy", "fedavg"],
    "fedavgm eta=0.1": ["--strategy", "fedavgm", "--server-learning-rate", "0.1"],
    "fedavgm eta=0.3": ["--strategy", "fedavgm", "--server-learning-rate", "0.3"],
    "fedavgm eta=1": ["--strategy", "fedavgm", "--server-learning-rate", "1"],
    "fedprox mu=0.001": ["--strategy", "fedprox", "--proximal-mu", "0.001"],
    "fedprox mu=0.01": ["--strategy", "fedprox", "--proximal-mu", "0.01"],
    "fedprox mu=0.1": ["--strategy", "fedprox", "--proximal-mu", "0.1"],
    "fedprox mu=1": ["--strategy", "fedprox", "--proximal-mu", "1"],
}
for opt in ["fedadam", "fedyogi", "fedadagrad"]:
    for eta in ["0.003", "0.01", "0.03", "0.1", "0.3"]:
        GRID[f"{opt} eta={eta}"] = ["--strategy", opt, "--server-learning-rate", eta,
                                    "--tau", "0.001"]

# Families of the grid: the "strategies" suite takes each family's setting
# with the best seed-1 accuracy in the grid, then runs it on every seed.
FAMILIES = {"FedAvg": "fedavg ", "FedAvgM": "fedavgm ", "FedProx": "fedprox ",
            "FedAdam": "fedadam ", "FedYogi": "fedyogi ", "FedAdagrad": "fedadagrad "}

ROBUST = {
    "FedAvg": ["--strategy", "fedavg"],
    "median": ["--strategy", "median"],
    "trimmed mean (0.2)": ["--strategy", "trimmed-mean", "--trim-fraction", "0.2"],
    "multi-Krum (f=2, m=n-f)": ["--strategy", "krum", "--krum-byzantine", "2"],
}
ATTACKS = {
    "no attack": [],
    "20% sign-flip": ["--malicious-fraction", "0.2", "--attack", "sign-flip"],
    "20% scale:-10": ["--malicious-fraction", "0.2", "--attack", "scale:-10"],
    "20% label-flip": ["--malicious-fraction", "0.2", "--attack", "label-flip"],
}


def slug(text):
    return "".join(c if c.isalnum() or c in ".-" else "_" for c in text)


def last_accuracy(out, rounds):
    path = os.path.join(out, "metrics.csv")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        rows = list(csv.DictReader(f))
    if len(rows) < rounds:
        return None
    return float(rows[rounds - 1]["test_accuracy"])


def run_dir(root, flags, seed):
    """Runs are keyed by their flags, so suites share them."""
    return os.path.join(root, slug("_".join(flags).replace("--", "")) or "fedavg", f"seed{seed}")


def run_all(binary, settings, seeds, rounds, jobs, root):
    futures = {}
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        for name, flags in settings.items():
            for seed in seeds:
                futures[(name, seed)] = pool.submit(run, binary, flags, seed, rounds,
                                                    run_dir(root, flags, seed))
    return {key: f.result() for key, f in futures.items()}


def tail_mean(out, rounds, last=5):
    """Mean test accuracy of rounds rounds-last+1 .. rounds (less noisy)."""
    with open(os.path.join(out, "metrics.csv")) as f:
        rows = list(csv.DictReader(f))[rounds - last:rounds]
    return statistics.mean(float(r["test_accuracy"]) for r in rows)


def run(binary, flags, seed, rounds, out):
    acc = last_accuracy(out, rounds)
    if acc is not None:
        return acc
    cmd = ["nice", "-n", "10", binary] + BASE + flags + [
        "--rounds", str(rounds), "--seed", str(seed), "--out", out]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
    return last_accuracy(out, rounds)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=os.path.join(ROOT, "build", "apps", "samverka"))
    parser.add_argument("--suite", choices=["grid", "strategies", "attack"], required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", default="runs/strategies")
    parser.add_argument("--csv", help="also write setting,seed,accuracy,tail_mean rows here")
    args = parser.parse_args()

    if args.suite == "grid":
        settings = dict(GRID)
    elif args.suite == "strategies":
        grid = run_all(args.binary, GRID, [1], args.rounds, args.jobs, args.out)
        settings = {}
        for family, prefix in FAMILIES.items():
            names = [n for n in GRID if n == prefix.strip() or n.startswith(prefix)]
            best = max(names, key=lambda n: grid[(n, 1)])
            settings[f"{family} ({best})"] = GRID[best]
    else:
        settings = {f"{name} / {attack}": flags + attack_flags
                    for attack, attack_flags in ATTACKS.items()
                    for name, flags in ROBUST.items()}
    results = run_all(args.binary, settings, args.seeds, args.rounds, args.jobs, args.out)

    seeds = " | ".join(f"seed {s}" for s in args.seeds)
    r = args.rounds
    print(f"| setting | {seeds} | mean | mean of rounds {r - 4}-{r} |")
    print("|---|" + "---:|" * (len(args.seeds) + 2))
    for name, flags in settings.items():
        accs = [results[(name, s)] for s in args.seeds]
        tails = [tail_mean(run_dir(args.out, flags, s), r) for s in args.seeds]
        cells = " | ".join(f"{a:.4f}" for a in accs)
        print(f"| {name} | {cells} | {statistics.mean(accs):.4f} | {statistics.mean(tails):.4f} |")
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["setting", "seed", f"accuracy_round_{r}", f"mean_rounds_{r - 4}_{r}"])
            for name, flags in settings.items():
                for s in args.seeds:
                    w.writerow([name, s, f"{results[(name, s)]:.4f}",
                                f"{tail_mean(run_dir(args.out, flags, s), r):.4f}"])
    print()
    for name, flags in settings.items():
        cmd = ["samverka"] + BASE + flags + ["--rounds", str(args.rounds), "--seed", "SEED"]
        print(f"- {name}: `{shlex.join(cmd)}`")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Independent cross-check of the RDP accountant (security/dp/accountant.cc).

Computes the Renyi divergence of the sampled Gaussian mechanism by direct
numerical integration, without the binomial series the C++ code uses:
for add/remove adjacency, Mironov, Talwar and Zhang (2019, arXiv:1908.10530)
section 3.3 show the RDP at order alpha is log(A_alpha) / (alpha - 1) with

    A_alpha = E_{z ~ N(0, sigma^2)} [ ((1 - q) + q exp((2z - 1) / (2 sigma^2)))^alpha ],

which this script integrates with the trapezoid rule in log space (float64,
torch for vectorisation). It then converts to (epsilon, delta) with both
conversions and compares with `samverka privacy` (relative tolerance 1e-3).

Usage:
  dp_rdp_integration.py SAMVERKA_BIN      # ctest: compare, exit 1 on mismatch
  dp_rdp_integration.py --eps Q SIGMA T DELTA   # print both epsilons
"""
import math
import re
import subprocess
import sys

import torch

torch.set_default_dtype(torch.float64)


def default_orders():
    # The order list documented for the C++ accountant (DefaultOrders()).
    return ([1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64)) +
            [64, 80, 96, 128, 256, 512, 1024])


def log_integrand(z, q, sigma, alpha):
    log_mu0 = -z * z / (2 * sigma**2) - math.log(sigma * math.sqrt(2 * math.pi))
    x = (2 * z - 1) / (2 * sigma**2)
    # log((1-q) + q e^x), stable for both signs of x.
    if q == 1:
        log_ratio = x
    else:
        log_ratio = torch.logaddexp(torch.full_like(x, math.log1p(-q)), x + math.log(q))
    return log_mu0 + alpha * log_ratio


def log_trapezoid(z, f):
    h = (z[1] - z[0]).item()
    w = torch.zeros_like(f)
    w[0] = w[-1] = math.log(0.5)
    return torch.logsumexp(f + w, 0).item() + math.log(h)


def rdp(q, sigma, alpha):
    # Locate the peak of the integrand on a broad grid, then integrate
    # finely around it.
    span = 20 * sigma + 2 * alpha + 10
    z = torch.linspace(-span, span, 40001)
    f = log_integrand(z, q, sigma, alpha)
    peak = z[torch.argmax(f)].item()
    width = 40 * sigma + 5
    z = torch.linspace(peak - width, peak + width, 40001)
    return max(0.0, log_trapezoid(z, log_integrand(z, q, sigma, alpha)) / (alpha - 1))


def epsilons(q, sigma, steps, delta):
    classic, balle = math.inf, math.inf
    for a in default_orders():
        r = steps * rdp(q, sigma, a)
        classic = min(classic, max(0.0, r - math.log(delta) / (a - 1)))
        balle = min(balle, max(0.0, r + math.log1p(-1 / a) - (math.log(delta) + math.log(a)) / (a - 1)))
    return classic, balle


# (q, sigma, rounds, delta): DP-FedAvg-like and DP-SGD-like settings.
CASES = [
    (0.1, 1.0, 50, 1e-5),
    (0.01, 1.1, 1000, 1e-5),
    (0.04, 1.5, 2250, 1e-5),
    (1.0, 4.0, 10, 1e-6),
    (0.5, 0.8, 3, 1e-3),
]


def main():
    if len(sys.argv) == 6 and sys.argv[1] == "--eps":
        q, sigma, steps, delta = float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
        print("classic %.10g  balle %.10g" % epsilons(q, sigma, steps, delta))
        return 0
    binary = sys.argv[1]
    failures = 0
    for q, sigma, steps, delta in CASES:
        out = subprocess.run([binary, "privacy", "--sampling-rate", repr(q), "--noise-multiplier",
                              repr(sigma), "--rounds", str(steps), "--delta", repr(delta)],
                             capture_output=True, text=True, check=True).stdout
        got_balle = float(re.search(r"^epsilon (\S+)", out, re.M).group(1))
        got_classic = float(re.search(r"^epsilon \(classic conversion\) (\S+)", out, re.M).group(1))
        want_classic, want_balle = epsilons(q, sigma, steps, delta)
        for name, got, want in (("balle", got_balle, want_balle), ("classic", got_classic, want_classic)):
            ok = abs(got - want) <= 1e-3 * max(want, 1e-9)
            failures += not ok
            print("%s q=%g sigma=%g T=%d delta=%g %s: samverka %.6g integration %.6g" %
                  ("ok  " if ok else "FAIL", q, sigma, steps, delta, name, got, want))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

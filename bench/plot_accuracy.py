#!/usr/bin/env python3
"""Plots test accuracy per round of one or more `samverka simulate` runs as SVG.

Usage: plot_accuracy.py OUT.svg LABEL=metrics.csv [LABEL=metrics.csv ...]
Needs nothing beyond the Python standard library.
"""
import csv
import sys

WIDTH, HEIGHT, MARGIN = 640, 400, 56
COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]


def main() -> None:
    out, runs = sys.argv[1], [a.split("=", 1) for a in sys.argv[2:]]
    series = []
    for label, path in runs:
        rows = list(csv.DictReader(open(path)))
        series.append((label, [(int(r["round"]), float(r["test_accuracy"])) for r in rows]))
    max_round = max(p[0] for _, pts in series for p in pts)
    lo, hi = 0.5, 1.0

    def x(r):
        return MARGIN + (WIDTH - 2 * MARGIN) * (r - 1) / max(1, max_round - 1)

    def y(a):
        return HEIGHT - MARGIN - (HEIGHT - 2 * MARGIN) * (a - lo) / (hi - lo)

    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
           'font-family="sans-serif" font-size="12">',
           f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>']
    for a in [0.5, 0.6, 0.7, 0.8, 0.85, 0.89, 0.9, 1.0]:
        dash = ' stroke-dasharray="4 3"' if a in (0.85, 0.89) else ""
        svg.append(f'<line x1="{MARGIN}" y1="{y(a):.1f}" x2="{WIDTH - MARGIN}" y2="{y(a):.1f}" '
                   f'stroke="#ccc"{dash}/>')
        svg.append(f'<text x="{MARGIN - 6}" y="{y(a) + 4:.1f}" text-anchor="end">{a:.2f}</text>')
    for r in range(0, max_round + 1, 10):
        if r >= 1:
            svg.append(f'<text x="{x(r):.1f}" y="{HEIGHT - MARGIN + 18}" text-anchor="middle">{r}</text>')
    svg.append(f'<text x="{WIDTH / 2}" y="{HEIGHT - 12}" text-anchor="middle">round</text>')
    svg.append(f'<text x="16" y="{HEIGHT / 2}" transform="rotate(-90 16 {HEIGHT / 2})" '
               'text-anchor="middle">test accuracy</text>')
    for i, (label, pts) in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        path = " ".join(f"{x(r):.1f},{y(max(lo, a)):.1f}" for r, a in pts)
        svg.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        svg.append(f'<text x="{WIDTH - MARGIN - 4}" y="{MARGIN + 16 * i + 4}" text-anchor="end" '
                   f'fill="{colour}">{label} (round {pts[-1][0]}: {pts[-1][1]:.4f})</text>')
    svg.append("</svg>")
    open(out, "w").write("\n".join(svg) + "\n")


if __name__ == "__main__":
    main()

"""Checks `samverka statistics --format json` output against pandas on the
pooled site files (the independent tool for tests/integration/statistics_cli_test.cc).

usage: statistics_check.py [--sites=N] SPEC.toml SUMMARY.json SITE.csv...
(--sites=N: the summary's site count, when the files were dealt among N sites.)
(SPEC.toml may be a statistics study's manifest: its [statistics] table is used.)
Prints one line per mismatch and exits 1, or prints the counts checked."""
import json
import sys
import tomllib

import numpy as np
import pandas as pd

MISSING = ["", "NA", "N/A", "NaN", "nan", "null", "NULL"]


def edges_of(column):
    if "edges" in column:
        return [float(e) for e in column["edges"]]
    low, high = column["range"]
    bins = column["bins"]
    return [low + (high - low) * k / bins for k in range(bins + 1)]


def main():
    args = sys.argv[1:]
    expected_sites = None
    if args and args[0].startswith("--sites="):
        expected_sites = int(args.pop(0).split("=", 1)[1])
    spec_path, summary_path, *sites = args
    if expected_sites is None:
        expected_sites = len(sites)
    with open(spec_path, "rb") as f:
        spec = tomllib.load(f)
    # A statistics study's manifest holds the spec as its [statistics] table.
    spec = spec.get("statistics", spec)
    with open(summary_path) as f:
        summary = json.load(f)
    pooled = pd.concat(
        [pd.read_csv(p, dtype=str, keep_default_na=False) for p in sites], ignore_index=True)
    min_count = spec.get("min_count", 5)
    group_by = spec.get("group_by")
    problems, checked, suppressed, quantiles_released = [], 0, 0, 0

    def expect_count(where, actual, true):
        nonlocal checked, suppressed
        expected = None if 0 < true < min_count else int(true)
        if expected is None:
            suppressed += 1
        if actual != expected:
            problems.append(f"{where}: {actual} released, pandas counts {true}")
        checked += 1

    def near(where, actual, true, bound):
        nonlocal checked
        if actual is None or abs(actual - true) > bound + 1e-9 * max(1.0, abs(true)):
            problems.append(f"{where}: {actual}, pandas {true}, bound {bound}")
        checked += 1

    groups = {"all": pooled}
    if group_by:
        for category in spec["columns"][group_by]["categories"]:
            groups[category] = pooled[pooled[group_by].str.strip() == category]
    if summary["sites"] != expected_sites:
        problems.append(f"sites: {summary['sites']}, expected {expected_sites}")
    for released in summary["groups"]:
        name = released["group"]
        frame = groups.pop(name)
        if released.get("suppressed"):
            if len(frame) >= min_count:
                problems.append(f"{name}: suppressed with {len(frame)} rows")
            continue
        if released["rows"] != len(frame):
            problems.append(f"{name}: {released['rows']} rows, pandas {len(frame)}")
        for column, column_spec in spec["columns"].items():
            stats = released["columns"][column]
            cells = frame[column].str.strip()
            missing = cells.isin(MISSING)
            where = f"{name}/{column}"
            if "categories" in column_spec:
                counts = cells[~missing].value_counts()
                for category in column_spec["categories"]:
                    expect_count(f"{where}[{category}]", stats["counts"][category],
                                 int(counts.get(category, 0)))
                other = int((~missing).sum() - counts.reindex(column_spec["categories"]).fillna(0).sum())
                expect_count(f"{where}[other]", stats["other"], other)
                expect_count(f"{where} missing", stats["missing"], int(missing.sum()))
                continue
            values = pd.to_numeric(cells[~missing])
            expect_count(f"{where} count", stats["count"], len(values))
            expect_count(f"{where} missing", stats["missing"], int(missing.sum()))
            if len(values) >= min_count:
                near(f"{where} mean", stats["mean"], values.mean(), stats["mean_error_bound"])
                near(f"{where} variance", stats["variance"], values.var(ddof=1),
                     stats["variance_error_bound"])
                near(f"{where} sd", stats["sd"], values.std(ddof=1), stats["sd_error_bound"])
            edges = edges_of(column_spec)
            v = values.to_numpy()
            expect_count(f"{where} below", stats["histogram"]["below"], int((v < edges[0]).sum()))
            expect_count(f"{where} above", stats["histogram"]["above"], int((v > edges[-1]).sum()))
            for k in range(len(edges) - 1):
                last = k == len(edges) - 2
                inside = (v >= edges[k]) & ((v <= edges[k + 1]) if last else (v < edges[k + 1]))
                expect_count(f"{where} bin {k}", stats["histogram"]["counts"][k], int(inside.sum()))
            for q in stats["quantiles"]:
                if q["value"] is None:
                    continue
                quantiles_released += 1
                near(f"{where} q{q['q']}", q["value"], values.quantile(q["q"]), q["error_bound"])
    if groups:
        problems.append(f"groups not released: {sorted(groups)}")
    for p in problems[:30]:
        print("MISMATCH", p)
    print(f"checked={checked} suppressed={suppressed} quantiles={quantiles_released}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

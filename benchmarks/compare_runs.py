#!/usr/bin/env python3
"""How far apart two runs of the same experiment are: the relative difference of every (benchmark, method,
metric, seed) value found in both `results.json` files (of `sb run` or `sb report` directories).

    python3 benchmarks/compare_runs.py runs/full/t-report runs/full2/t-report

Prints the number of values compared, the largest and the median relative difference, and the worst entry.
"""
import json, os, statistics, sys

if len(sys.argv) != 3:
    sys.exit(__doc__)


def values(run):
    rows = json.load(open(os.path.join(run, "results.json")))
    return {(r["benchmark"], r["method"], r["metric"], r["seed"]): r["value"] for r in rows}


a, b = values(sys.argv[1]), values(sys.argv[2])
common = [k for k in a if k in b and a[k] is not None and b[k] is not None]
if not common:
    sys.exit("no value is found in both runs")
rel = {k: abs(a[k] - b[k]) / max(abs(a[k]), 1e-300) for k in common}
worst = max(rel, key=rel.get)
print(f"{len(common)} values; relative difference: max {rel[worst]:.2e}, median {statistics.median(rel.values()):.2e}")
print(f"worst: {worst}: {a[worst]!r} against {b[worst]!r}")

#!/usr/bin/env python3
"""One row per G2 problem, one column per method: a metric of the suite's DSB/DSBM rows and of the peers'
rows side by side, read from the tables already in docs/results.md and from run directories.

    python3 benchmarks/g2_pivot.py runs/peers/g2-2cores-v2 [--metric cbw_uvp] [--doc docs/results.md]

The DSB/DSBM and LightSB values are taken from the tables of docs/results.md's sections "G2 — rotated
Gaussians" and "G2 with LightSB" (mean column); the other methods from each run directory's results.json
(mean over its seeds). Prints a Markdown table, the wall seconds per job of the run directories' methods last.
"""
import argparse, json, os, re, statistics
from collections import defaultdict

from g2_common import METHOD_ORDER, problem_key

p = argparse.ArgumentParser()
p.add_argument("runs", nargs="+")
p.add_argument("--metric", default="cbw_uvp")
p.add_argument("--doc", default="docs/results.md")
args = p.parse_args()

values = defaultdict(dict)  # benchmark -> method -> value
walls = defaultdict(dict)
section = None
for line in open(args.doc):
    if line.startswith("#"):
        section = line.strip()
        continue
    if not section or not (section.startswith("## G2 — rotated Gaussians") or section.startswith("### G2 with LightSB")):
        continue
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if len(cells) >= 4 and cells[0].startswith("g2-") and cells[2] == args.metric:
        values[cells[0]][cells[1]] = float(re.split(r"[ ±]", cells[3])[0])
for run in args.runs:
    rows = json.load(open(os.path.join(run, "results.json")))
    by = defaultdict(list)
    for r in rows:
        if r["metric"] == args.metric:
            by[(r["benchmark"], r["method"])].append((r["value"], r["wall_s"]))
    for (b, m), vs in by.items():
        values[b][m] = statistics.mean(v for v, _ in vs)
        walls[b][m] = statistics.mean(w for _, w in vs)

methods = [m for m in METHOD_ORDER if any(m in v for v in values.values())]
run_methods = [m for m in methods if any(m in w for w in walls.values())]
print("| problem | " + " | ".join(methods) + " | " + " | ".join(f"{m} wall s" for m in run_methods) + " |")
print("|---" * (1 + len(methods) + len(run_methods)) + "|")
for b in sorted(values, key=problem_key):
    row = [f"{values[b][m]:.3g}" if m in values[b] else "–" for m in methods]
    row += [f"{walls[b][m]:.0f}" if m in walls[b] else "–" for m in run_methods]
    print(f"| {b} | " + " | ".join(row) + " |")

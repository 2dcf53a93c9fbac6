#!/usr/bin/env python3
"""One metric of a G1 or G2 experiment (experiments/paper/g1.yaml, experiments/peers/g2-2cores.yaml,
experiments/paper/g2.yaml) over seeds: mean ± 95% interval per problem and method, from any mix of run
directories (their results.json) and CSV files of per-seed values (benchmark, method, seed, one column per
metric, wall_s; an empty cell is a value not kept; lines starting with # are comments), such as
benchmarks/data/g2-peers-cbw-seeds01.csv.

    python3 benchmarks/seeds_table.py benchmarks/data/g2-peers-cbw-seeds01.csv benchmarks/data/g2-peers-seed2.json
    python3 benchmarks/seeds_table.py benchmarks/data/paper-g1-seed*.* --metric kl_e-3

The interval is t(0.975, n − 1) · std / √n with the sample standard deviation, as `sb report` computes it.
A (benchmark, method, seed) given twice is an error. Prints a Markdown table: per method the mean ± interval
and the number of seeds, then the wall seconds per job of each seed whose walls are known.
"""
import argparse, csv, json, math, os, statistics, sys
from collections import defaultdict

from g2_common import METHOD_ORDER, problem_key

# Two-sided 95% quantiles of Student's t for 1–9 degrees of freedom.
T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262]

p = argparse.ArgumentParser()
p.add_argument("sources", nargs="+", help="run directories, results.json files or CSV files")
p.add_argument("--metric", default="cbw_uvp")
args = p.parse_args()

values = defaultdict(dict)  # (benchmark, method) -> seed -> value
walls = defaultdict(dict)


def add(source, benchmark, method, seed, value, wall):
    key = (benchmark, method)
    if seed in values[key]:
        sys.exit(f"{source}: {benchmark} / {method} / seed {seed} is given twice")
    values[key][seed] = value
    if wall is not None:
        walls[key][seed] = wall


for source in args.sources:
    path = os.path.join(source, "results.json") if os.path.isdir(source) else source
    if path.endswith(".csv"):
        lines = [l for l in open(path) if not l.startswith("#")]
        for r in csv.DictReader(lines):
            if args.metric not in r:
                sys.exit(f"{path}: no column '{args.metric}'")
            if not r[args.metric]:
                continue
            wall = float(r["wall_s"]) if r.get("wall_s") else None
            add(path, r["benchmark"], r["method"], int(r["seed"]), float(r[args.metric]), wall)
    else:
        for r in json.load(open(path)):
            if r["metric"] == args.metric:
                add(path, r["benchmark"], r["method"], r["seed"], r["value"], r["wall_s"])

# The usual methods in their order, then labelled variants (such as "DSBM-IPF, EMA 0.999") as first seen.
methods = [m for m in METHOD_ORDER if any(k[1] == m for k in values)]
methods += [m for m in dict.fromkeys(k[1] for k in values) if m not in methods]


def cell(vs):
    n = len(vs)
    mean = statistics.mean(vs)
    if n < 2:
        return f"{mean:.3g} (1)"
    half = T975[n - 2] * statistics.stdev(vs) / math.sqrt(n)
    spread = f"{half:.2g}" if half < 10 else f"{half:.0f}"
    return f"{mean:.3g} ± {spread} ({n})"


timed = sorted({seed for w in walls.values() for seed in w})
seeds_named = " / ".join(str(seed) for seed in timed)
print("| problem | " + " | ".join(f"{m}: mean ± 95% CI (seeds)" for m in methods)
      + " | " + " | ".join(f"{m} wall s, seed {seeds_named}" for m in methods) + " |")
print("|---" * (1 + 2 * len(methods)) + "|")
for b in sorted({k[0] for k in values}, key=problem_key):
    row = [cell(list(values[(b, m)].values())) if (b, m) in values else "–" for m in methods]
    row += [" / ".join(f"{walls[(b, m)][seed]:.0f}" if seed in walls.get((b, m), {}) else "–" for seed in timed)
            for m in methods]
    print(f"| {b} | " + " | ".join(row) + " |")

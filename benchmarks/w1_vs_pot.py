#!/usr/bin/env python3
"""Exact W1 at n = m = 1000, 2000, 4000 (d = 5): POT's ot.emd2 against `sb metric w1`, same clouds, one run.

    pip install pot numpy
    cargo build --release -p sb-cli
    python3 benchmarks/w1_vs_pot.py [--repeats 3] [--sb target/release/sb]
    python3 benchmarks/w1_vs_pot.py --sizes 20000,50000,100000 --repeats 1 --pot-max 20000

Sizes above --pot-max run ours only (POT holds the dense n × m matrix: 80 GB at n = 10^5).
Peak memory: ours is the `sb` process's maximum resident set (GNU time's %M); POT's is this
process's largest resident set so far (getrusage), so the size's own peak when sizes are given in
increasing order.

Clouds: a ~ N(0, I), b ~ N(0.5·1, I), numpy seed 0, written as float64 .npy. POT runs with
numItermax = 10^9 (its default cap of 10^5 stops early at these sizes and returns a wrong value);
its time includes building the cost matrix (ot.dist, Euclidean). Ours is the wall time of the
`sb metric w1` process (reading both files, building the cost matrix, solving). Prints a Markdown
table with medians and the relative difference of the values.
"""
import argparse, json, subprocess, sys, tempfile, time, os
import numpy as np
import ot

p = argparse.ArgumentParser()
p.add_argument("--repeats", type=int, default=3)
p.add_argument("--sb", default="target/release/sb")
p.add_argument("--sizes", default="1000,2000,4000")
p.add_argument("--pot-max", type=int, default=10**9, help="largest n that POT runs at")
args = p.parse_args()

import resource
def peak_mb(who):
    return resource.getrusage(who).ru_maxrss / 1024

rng = np.random.default_rng(0)
rows = []
with tempfile.TemporaryDirectory() as tmp:
    for n in [int(s) for s in args.sizes.split(",")]:
        a = rng.standard_normal((n, 5))
        b = rng.standard_normal((n, 5)) + 0.5
        pa, pb = os.path.join(tmp, f"a{n}.npy"), os.path.join(tmp, f"b{n}.npy")
        np.save(pa, a); np.save(pb, b)
        pot_times, sb_times = [], []
        pot_value, pot_mb = float("nan"), float("nan")
        for _ in range(args.repeats):
            if n <= args.pot_max:
                t0 = time.perf_counter()
                M = ot.dist(a, b, metric="euclidean")
                pot_value = ot.emd2(np.full(n, 1.0 / n), np.full(n, 1.0 / n), M, numItermax=10**9)
                pot_times.append(time.perf_counter() - t0)
                del M
                pot_mb = peak_mb(resource.RUSAGE_SELF)
            t0 = time.perf_counter()
            rss = os.path.join(tmp, "rss")
            out = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss, args.sb, "metric", "w1", pa, pb],
                                 check=True, capture_output=True, text=True)
            sb_times.append(time.perf_counter() - t0)
            line = json.loads(out.stdout)
            sb_mb = int(open(rss).read().split()[-1]) / 1024
        ours = float(np.median(sb_times))
        pot_t = float(np.median(pot_times)) if pot_times else float("nan")
        rel = abs(line["value"] - pot_value) / pot_value
        rows.append((n, ours, pot_t, ours / pot_t, line["value"], float(pot_value), rel, line["converged"],
                     sb_mb, pot_mb, line.get("costs")))

print(f"POT {ot.__version__}, numpy {np.__version__}, {args.repeats} repeats, medians")
print("| n = m (d = 5) | sb metric w1 (s) | POT ot.emd2 (s) | ours / POT | W1 ours | W1 POT | rel. diff | converged | costs | peak MB ours | peak MB POT |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r[0]} | {r[1]:.3f} | {r[2]:.3f} | {r[3]:.2f} | {r[4]:.12f} | {r[5]:.12f} | {r[6]:.1e} | {r[7]} | {r[10]} | {r[8]:.0f} | {r[9]:.0f} |")

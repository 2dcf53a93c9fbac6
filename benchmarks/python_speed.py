#!/usr/bin/env python3
"""The Python package's speed (issue 15), one run on one machine:

1. exact OT: `sbridge.emd2` against POT's `ot.emd2` on the same cost matrix (n × n squared
   Euclidean costs between two N(0, I) clouds in d = 5, numpy seed 0), n = 1000 and 4000, the
   median of `--repeats` calls each, and the two values' relative difference;
2. the binding's overhead: `sbridge.run(experiments/quickstart.yaml)` against `sb run` of the same
   file (`--quiet`, release build), the median of `--repeats` runs each (the same Rust runner, so
   the difference is what the Python layer costs: argument conversion, the GIL, the extension's
   build);
3. `sbridge.Bridge.fit` + `sample` of the quickstart's DSBM-IMF entry on 1000 + 1000 points, for
   scale.

    pip install pot numpy && bash crates/sb-py/test.sh   # builds and installs sbridge
    cargo build --release -p sb-cli
    python3 benchmarks/python_speed.py [--repeats 3] [--sb target/release/sb]

Prints Markdown rows for docs/performance.md.
"""
import argparse, os, statistics, subprocess, tempfile, time
import numpy as np
import ot
import sbridge

p = argparse.ArgumentParser()
p.add_argument("--repeats", type=int, default=3)
p.add_argument("--sb", default="target/release/sb")
args = p.parse_args()


def median_time(f, repeats=args.repeats):
    times, value = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = f()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), value


print("| measurement | sbridge (s) | peer (s) | ratio sbridge / peer | values |")
print("|---|---|---|---|---|")
rng = np.random.default_rng(0)
for n in (1000, 4000):
    x, y = rng.standard_normal((n, 5)), rng.standard_normal((n, 5))
    M = ot.dist(x, y)
    w = np.full(n, 1.0 / n)
    ours, v_ours = median_time(lambda: sbridge.emd2([], [], M))
    pot, v_pot = median_time(lambda: ot.emd2(w, w, M, numItermax=10**9))
    print(f"| emd2, n = {n}, d = 5 (peer: POT {ot.__version__} `ot.emd2`) | {ours:.3f} | {pot:.3f} | "
          f"{ours / pot:.2f} | {v_ours:.12g} vs {v_pot:.12g} (rel. diff {abs(v_ours - v_pot) / v_pot:.1e}) |")

with tempfile.TemporaryDirectory() as tmp:
    k = {"py": 0, "sb": 0}

    def python_run():
        k["py"] += 1
        return sbridge.run("experiments/quickstart.yaml", out=os.path.join(tmp, f"py{k['py']}"))

    def cli_run():
        k["sb"] += 1
        subprocess.run([args.sb, "run", "experiments/quickstart.yaml", "--quiet", "--out",
                        os.path.join(tmp, f"sb{k['sb']}")], check=True, capture_output=True)

    ours, rows = median_time(python_run)
    cli, _ = median_time(cli_run)
    key = lambda r: (r["benchmark"], r["method"], r["seed"], r["metric"])
    cli_rows = {key(r): r["value"] for r in sbridge.report(os.path.join(tmp, "sb1")).rows}
    same = "same values" if {key(r): r["value"] for r in rows} == cli_rows else "VALUES DIFFER"
    print(f"| quickstart: `sbridge.run` vs `sb run --quiet` (peer) | {ours:.2f} | {cli:.2f} | {ours / cli:.3f} | {same} |")

moons = np.random.default_rng(1)
angles = moons.uniform(0, np.pi, 1000)
upper = moons.uniform(size=1000) < 0.5
x0 = np.where(upper[:, None], np.c_[np.cos(angles), np.sin(angles)],
              np.c_[1 - np.cos(angles), 0.5 - np.sin(angles)]) + 0.1 * moons.standard_normal((1000, 2))
x1 = moons.standard_normal((1000, 2))
options = dict(num_steps=20, hidden=[128, 128], passes=4, steps_per_pass=1500, batch_size=256, lr=1e-3, cache_size=2000)
fit, bridge = median_time(lambda: sbridge.Bridge.fit(x0, x1, method="dsbm-imf", **options), repeats=1)
sample, _ = median_time(lambda: bridge.sample(x0))
print(f"| `Bridge.fit` of the quickstart's DSBM-IMF (4 × 1500 steps), then `sample` of 1000 points | "
      f"{fit:.2f} + {sample:.3f} | — | — | — |")

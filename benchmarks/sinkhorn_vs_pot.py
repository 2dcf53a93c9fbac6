#!/usr/bin/env python3
"""Entropic OT at scale: POT's log-domain Sinkhorn against `sb metric sinkhorn`, same clouds, same
regularisation, to the same marginal error, one run.

    pip install pot numpy
    cargo build --release -p sb-cli
    python3 benchmarks/sinkhorn_vs_pot.py [--n 10000] [--d 5] [--tol 1e-6] [--sb target/release/sb]

Clouds: a ~ N(0, I), b ~ N(0.5·1, I) (numpy seed 0, float64 .npy), squared Euclidean cost,
reg = 0.05 · the median cost. POT (`ot.sinkhorn(..., method="sinkhorn_log")`) runs first: it stops on the
L2 norm of its second marginal's error, checked every 10 iterations, given stopThr = tol / √n (which bounds
the L1 error by tol); the L1 errors of both marginals of its plan are measured afterwards, and ours runs to
the larger of them (it stops when the first marginal's L1 error is below that; the second is exact after
each iteration), so both reach the same marginal error. Both times include building the cost matrix; ours
is the wall time of the `sb` process (reading the files too). Prints one Markdown row per solver.
"""
import argparse, json, os, subprocess, tempfile, time
import numpy as np
import ot

p = argparse.ArgumentParser()
p.add_argument("--n", type=int, default=10000)
p.add_argument("--d", type=int, default=5)
p.add_argument("--tol", type=float, default=1e-6)
p.add_argument("--sb", default="target/release/sb")
args = p.parse_args()
n, d, tol = args.n, args.d, args.tol

rng = np.random.default_rng(0)
a = rng.standard_normal((n, d))
b = rng.standard_normal((n, d)) + 0.5
M = ot.dist(a, b)  # squared Euclidean
reg = 0.05 * float(np.median(M))
del M

t0 = time.perf_counter()
M = ot.dist(a, b)
w = np.full(n, 1.0 / n)
G, log = ot.sinkhorn(w, w, M, reg, method="sinkhorn_log", stopThr=tol / np.sqrt(n), numItermax=100000, log=True)
pot_time = time.perf_counter() - t0
pot_cost = float(np.sum(G * M))
pot_err1 = float(np.abs(G.sum(1) - w).sum())
pot_err2 = float(np.abs(G.sum(0) - w).sum())

target = max(pot_err1, pot_err2)
del G, M

with tempfile.TemporaryDirectory() as tmp:
    pa, pb = os.path.join(tmp, "a.npy"), os.path.join(tmp, "b.npy")
    np.save(pa, a)
    np.save(pb, b)
    t0 = time.perf_counter()
    out = subprocess.run([args.sb, "metric", "sinkhorn", pa, pb, "--reg", repr(reg), "--tol", repr(target)],
                         check=True, capture_output=True, text=True)
    ours_time = time.perf_counter() - t0
    ours = json.loads(out.stdout)

print(f"n = m = {n}, d = {d}, reg = {reg:.6g} (0.05 × median cost); POT to stopThr {tol / np.sqrt(n):.3g} (L2), ours to its L1 error {target:.3g}")
print()
print("| solver | ⟨P, C⟩ | iterations | L1 marginal error | time (s) |")
print("|---|---|---|---|---|")
print(f"| sb metric sinkhorn | {ours['value']:.12f} | {ours['iterations']} | {ours['marginal_error']:.2e} (first; second exact) | {ours_time:.1f} |")
print(f"| POT ot.sinkhorn (sinkhorn_log) | {pot_cost:.12f} | {log['niter']} | {pot_err1:.2e} / {pot_err2:.2e} | {pot_time:.1f} |")
print()
print(f"relative difference of ⟨P, C⟩: {abs(ours['value'] - pot_cost) / pot_cost:.2e}; ours / POT time: {ours_time / pot_time:.3f}")

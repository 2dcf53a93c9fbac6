"""docs/python.md's example: DSBM-IMF between a Gaussian and two moons from numpy, exact W2 of the
samples (against POT's, if POT is installed), and the same bridge from an experiment dict.

    python3 crates/sb-py/examples/moons.py
"""
import time

import numpy as np

import sbridge

rng = np.random.default_rng(0)


def moons(n):
    angle = rng.uniform(0, np.pi, n)
    upper = rng.uniform(size=n) < 0.5
    x = np.where(upper[:, None], np.c_[np.cos(angle), np.sin(angle)],
                 np.c_[1 - np.cos(angle), 0.5 - np.sin(angle)])
    return x + 0.1 * rng.standard_normal((n, 2))


x0 = rng.standard_normal((2000, 2))  # π0: N(0, I)
x1 = moons(2000)                      # π1: two moons
start = time.perf_counter()
bridge = sbridge.Bridge.fit(x0, x1, method="dsbm-imf", sigma=1.0, seed=0,
                            hidden=[128, 128], passes=4, steps_per_pass=1500, lr=1e-3, cache_size=2000)
print(f"{bridge.name}: trained in {time.perf_counter() - start:.1f} s")

test0, test1 = rng.standard_normal((1000, 2)), moons(1000)
generated = bridge.sample(test0, seed=1)                       # forward: Gaussian → moons
back = bridge.sample(test1, direction="backward", seed=1)      # backward: moons → Gaussian
print(f"W2(generated, moons)   = {sbridge.wasserstein(generated, test1, p=2):.4f}")
print(f"W2(back, Gaussian)     = {sbridge.wasserstein(back, test0, p=2):.4f}")
print(f"W2(moons, moons) floor = {sbridge.wasserstein(moons(1000), test1, p=2):.4f}")
try:
    import ot
    M = ot.dist(generated, test1)
    print(f"POT's W2 of the same  = {np.sqrt(ot.emd2([], [], M, numItermax=10**9)):.4f}")
except ImportError:
    pass

path = bridge.sample(test0[:5], seed=1, return_trajectories=True)
print("trajectories:", path.shape)                              # (21, 5, 2)
bridge.save("runs/python-moons")                                # `sb sample runs/python-moons …` reads it
assert sbridge.Bridge.load("runs/python-moons").name == bridge.name

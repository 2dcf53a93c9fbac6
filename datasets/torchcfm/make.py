"""Writes TorchCFM's 2-D toy data sets exactly as its runner and the official DSBM toy peer make them
(../../../shared/peer/dsbm_official_toys.py): scikit-learn's make_moons(n_samples=12000, noise=0.05,
random_state=42), times 2, then x - 1 (y unchanged); rows reordered by
numpy.random.default_rng(42).permutation(12000), so that rows 0-9,999 are the train split, 10,000-10,999
the val split and 11,000-11,999 the test split (cut in order with `split: {..., shuffle: false}`).
Needs: pip install numpy scikit-learn. Run from this folder: python3 make.py
"""
import numpy as np
from sklearn.datasets import make_moons

x, _ = make_moons(n_samples=12000, noise=0.05, random_state=42)
x *= 2
x[:, 0] -= 1
p = np.random.default_rng(42).permutation(12000)
np.save("moons-42.npy", x[p].astype(np.float64))
print("moons-42.npy", x[p].shape, "train x-mean %+.4f" % x[p[:10000], 0].mean())

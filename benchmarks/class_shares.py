#!/usr/bin/env python3
"""Per-class shares of generated digits (issue 16's class histogram, class by class).

    python3 benchmarks/class_shares.py runs/i1-classes noise-digits DSB DSBM-IMF

Fits a softmax classifier on the train split of datasets/digits/centred.npy (rows 0..1397, standardised
pixels, full-batch gradient descent: the same model as sb_eval::SoftmaxClassifier, refitted here with numpy)
and prints, for each method and seed, the percentage of the saved backward samples
(models/<problem>/<method>/seed<k>/backward.npy: the generated π0 of every evaluation block, 20 Euler
steps with the last step's noise) assigned to each digit, beside the test images' shares under the same classifier.
"""
import sys, pathlib
import numpy as np

run, problem, methods = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
X = np.load("datasets/digits/centred.npy"); y = np.load("datasets/digits/labels.npy").astype(int)
train, labels, test = X[:1397], y[:1397], X[1597:1797]
mu, sd = train.mean(0), train.std(0) + 1e-6
f = lambda a: (a - mu) / sd
W, b, Y = np.zeros((64, 10)), np.zeros(10), np.eye(10)[labels]
for _ in range(2000):
    z = f(train) @ W + b; z -= z.max(1, keepdims=True); p = np.exp(z); p /= p.sum(1, keepdims=True)
    g = p - Y; W -= 0.1 * (f(train).T @ g / len(train) + 1e-3 * W); b -= 0.1 * g.mean(0)
predict = lambda a: (f(a) @ W + b).argmax(1)
print(f"classifier test accuracy {(predict(test) == y[1597:1797]).mean():.3f}")
print("| method | seed | images | " + " | ".join(str(c) for c in range(10)) + " | largest gap to 10 % |")
print("|---|---|---|" + "---|" * 11)
def row(name, seed, a):
    s = np.bincount(predict(a), minlength=10) / len(a) * 100
    print(f"| {name} | {seed} | {len(a)} | " + " | ".join(f"{v:.1f}" for v in s) + f" | {np.abs(s - 10).max():.1f} |")
row("test images", "—", test)
for m in methods:
    for d in sorted((run / "models" / problem / m).glob("seed*")):
        row(m, d.name[4:], np.load(d / "backward.npy").astype(float))

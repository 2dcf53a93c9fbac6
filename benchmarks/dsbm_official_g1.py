#!/usr/bin/env python3
"""The official DSBM code on G1 (experiments/paper/g1.yaml's protocol), scored by our KL estimator.

Trains with the official classes (yuyang-shi/dsbm-pytorch, `DSBM-Gaussian.py`: MLP, ScoreNetwork, DSBM,
train_dsbm; read from the copy of that file given on the command line, not part of this project) exactly as
its `train` does with `conf/gaussian.yaml`: π0 = N(−0.1·1, I), π1 = N(0.1·1, I), one fixed set of 10,000
points per end, [256, 256] SiLU with the time concatenated, batch 128, Adam lr 1e-4, 40 passes of 10,000
steps in the order b, f, b, …, σ = 1, N = 20, the seed set as `pl.seed_everything` does (torch, NumPy and
random), the script's test sets drawn and set aside. Left out: the script's evaluation after every pass
(backward samples of every earlier model, which draw from the same torch generator, so from the second pass
on the training draws differ from a run of the script with the same seed; the distribution of a run is the
same).

Scored as `experiments/paper/g1.yaml` scores ours: forward paths of the last forward model from fresh π0
points, the Gaussian KL (unbiased covariance) against the closed-form marginal at the 21 times 0, 0.05, …,
1, mean ×10⁻³, with n = 10⁴ (`kl_e-3`) and n = 10⁶ paths (`kl_e-3@n=1000000`, moments accumulated over
chunks), the diagonal KL at 10⁶ and the mean cross-covariance diag Cov(X0, X1) at 10⁴.

    pip install torch numpy
    python3 benchmarks/dsbm_official_g1.py PATH/TO/DSBM-Gaussian.py --dim 5 --coupling ref --seed 1

Prints one JSON line; `--threads` sets torch's thread count (default 1).
"""
import argparse, copy, json, random, sys, time

import numpy as np
import torch

# The closed-form G1 bridge and the runs' KL over the 21 times, shared with the floors.
from g1_floors import diagonal_kl, g1, mean_kl

p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("source", help="the official DSBM-Gaussian.py")
p.add_argument("--dim", type=int, default=5)
p.add_argument("--coupling", choices=["ref", "ind"], default="ref", help="ref: DSBM-IPF, ind: DSBM-IMF")
p.add_argument("--seed", type=int, default=1)
p.add_argument("--passes", type=int, default=40)
p.add_argument("--steps", type=int, default=10000)
p.add_argument("--threads", type=int, default=1)
args = p.parse_args()

src = open(args.source).read()
start, end = src.index("class MLP"), src.index("class SBCFM")
ns = {}
exec("import torch, numpy as np, copy\nimport torch.nn as nn\nimport torch.nn.functional as F\n"
     "from torch.utils.data import DataLoader, TensorDataset\nfrom functools import partial\n"
     "def tqdm(x, **k):\n    return x\n"
     "device = 'cpu'\nlr = 1e-4\n" + src[start:end], ns)

torch.set_num_threads(args.threads)
random.seed(args.seed)
np.random.seed(args.seed)
torch.manual_seed(args.seed)
a, d, sigma, n_steps = 0.1, args.dim, 1.0, 20
began = time.time()
x0 = torch.distributions.Normal(-a * torch.ones(d), 1).sample([10000])
x1 = torch.distributions.Normal(a * torch.ones(d), 1).sample([10000])
x_pairs = torch.stack([x0, x1], dim=1)
# The script's test sets, drawn here too so that the first pass's draws are the script's.
torch.distributions.Normal(-a * torch.ones(d), 1).sample([10000])
torch.distributions.Normal(a * torch.ones(d), 1).sample([10000])
net = lambda: ns["ScoreNetwork"](input_dim=d + 1, layer_widths=[256, 256, d], activation_fn=torch.nn.SiLU())
model = ns["DSBM"](net_fwd=net(), net_bwd=net(), num_steps=n_steps, sig=sigma, first_coupling=args.coupling)
models = []
for it in range(args.passes):
    fb = "b" if it % 2 == 0 else "f"
    prev = None if it == 0 else models[-1]
    model, _ = ns["train_dsbm"](model, x_pairs, 128, args.steps, prev_model=prev, fb=fb, first_it=(it == 0))
    models.append(copy.deepcopy(model).eval())
    print(f"pass {it + 1}/{args.passes} ({fb}) done, {time.time() - began:.0f} s", file=sys.stderr, flush=True)
train_s = time.time() - began
fwd = next(m for m in reversed(models) if m.fb == "f")

truth = g1(d, a=a, sigma=sigma)


def path_moments(n, gen, chunk=50000):
    """Sums for the mean and covariance of n forward paths at each of the 21 times, and of [x0, x1]."""
    k = 0
    sums = [np.zeros(d) for _ in range(n_steps + 1)]
    outer = [np.zeros((d, d)) for _ in range(n_steps + 1)]
    joint, joint_outer = np.zeros(2 * d), np.zeros((2 * d, 2 * d))
    while k < n:
        rows = min(chunk, n - k)
        z = torch.distributions.Normal(-a * torch.ones(d), 1).sample([rows])
        traj = [s.double().numpy() for s in gen.sample_sde(zstart=z, fb="f")]
        for i, s in enumerate(traj):
            sums[i] += s.sum(0)
            outer[i] += s.T @ s
        j = np.hstack([traj[0], traj[-1]])
        joint += j.sum(0)
        joint_outer += j.T @ j
        k += rows
    cov = lambda s, o: (o - np.outer(s, s) / n) / (n - 1)
    moments = [(s / n, cov(s, o)) for s, o in zip(sums, outer)]
    cross = cov(joint, joint_outer)[:d, d:]
    return moments, float(np.mean(np.diag(cross)))


with torch.no_grad():
    m4, cross4 = path_moments(10_000, fwd)
    m6, _ = path_moments(1_000_000, fwd)
print(json.dumps({
    "code": "official DSBM-Gaussian.py", "method": "DSBM-IPF" if args.coupling == "ref" else "DSBM-IMF",
    "dim": d, "seed": args.seed, "passes": args.passes, "steps": args.steps,
    "kl_e-3": round(mean_kl(m4, truth), 4), "kl_e-3@n=1000000": round(mean_kl(m6, truth), 4),
    "kl_diag_e-3@n=1000000": round(mean_kl(m6, truth, diagonal_kl), 4), "cross_cov": round(cross4, 4),
    "train_s": round(train_s), "wall_s": round(time.time() - began), "threads": args.threads,
}))

#!/usr/bin/env python3
"""Speed of `sb` against the PyTorch peer and POT, in one run, written into docs/performance.md.

    pip install torch pot numpy
    cargo build --release -p sb-cli
    python3 benchmarks/speed.py [--repeats 3] [--threads 2] [--out docs/performance.md]

Each row runs ours and the peer alternately, `--repeats` times each, and reports medians:

- train-step and sample: `sb bench ...` against `../shared/peer/torch_bench.py ...`, same arguments and
  threads. Achieved GFLOP/s count the products only: a forward pass is 2·B·P FLOPs, with P the sum of
  fan_in·fan_out over the layers; a training step is three of them (forward, and backward for the
  inputs and the weights); a particle-step is one forward row.
- w1: `sb metric w1 a.npy b.npy` (process wall time: reading, cost matrix, network simplex) against POT's
  `ot.dist` + `ot.emd2(numItermax=10**9)` (POT's default cap stops early at this size), same clouds
  (numpy seed 0, a ~ N(0, I), b ~ N(0.5·1, I)), with the relative difference of the two values.
- matmul: `sb bench matmul` (2048 × 2048 f32 product, rows across the threads): the measured matrix peak
  that the GFLOP/s columns are divided by.

The table replaces the text between the `speed.py` markers in the output file.
"""
import argparse, datetime, json, os, platform, statistics, subprocess, sys, tempfile, time

import numpy as np
import ot

p = argparse.ArgumentParser()
p.add_argument("--repeats", type=int, default=3)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--sb", default="target/release/sb")
p.add_argument("--peer", default="../shared/peer/torch_bench.py")
p.add_argument("--out", default="docs/performance.md")
args = p.parse_args()

START, END = "<!-- speed.py:start -->", "<!-- speed.py:end -->"
NET = ["--hidden", "256", "--layers", "3"]
WORK = [
    ("train-step", ["--dim", "2", "--batch", "512", "--steps", "300"], 1.2),
    ("train-step", ["--dim", "50", "--batch", "128", "--steps", "300"], 1.2),
    ("sample", ["--dim", "2", "--batch", "10000", "--num-steps", "20"], 1.5),
]


def json_line(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def flops_per_unit(kind, dim, hidden=256, layers=3, batch=1):
    widths = [dim + 1] + [hidden] * layers + [dim]
    p = sum(a * b for a, b in zip(widths, widths[1:]))
    return 6 * batch * p if kind == "train-step" else 2 * p


threads = ["--threads", str(args.threads)]
peaks = [json_line([args.sb, "bench", "matmul"] + threads)["gflops"] for _ in range(args.repeats)]
peak = statistics.median(peaks)

rows, torch_version = [], "?"
for kind, work, target in WORK:
    ours, peer = [], []
    for _ in range(args.repeats):
        line = json_line([args.sb, "bench", kind] + NET + work + threads)
        ours.append(line["steps_per_sec" if kind == "train-step" else "particle_steps_per_sec"])
        line = json_line([sys.executable, args.peer, kind] + NET + work + threads)
        torch_version = line.get("torch", torch_version)
        peer.append(line["steps_per_sec" if kind == "train-step" else "particle_steps_per_sec"])
    a, b = statistics.median(ours), statistics.median(peer)
    dim = int(work[work.index("--dim") + 1])
    batch = int(work[work.index("--batch") + 1])
    f = flops_per_unit(kind, dim, batch=batch)
    unit = "steps/s" if kind == "train-step" else "particle-steps/s"
    rows.append((f"`{kind} {' '.join(NET + work)}`", f"{a:,.0f} {unit}", f"{b:,.0f} {unit}",
                 f"{a / b:.2f}× faster" if a >= b else f"{b / a:.2f}× slower", f"≥ {target}× faster",
                 f"{a * f / 1e9:.0f} ({100 * a * f / 1e9 / peak:.0f}%)",
                 f"{b * f / 1e9:.0f} ({100 * b * f / 1e9 / peak:.0f}%)", a / b >= target))

rng = np.random.default_rng(0)
n = 4000
a = rng.standard_normal((n, 5))
b = rng.standard_normal((n, 5)) + 0.5
with tempfile.TemporaryDirectory() as tmp:
    pa, pb = os.path.join(tmp, "a.npy"), os.path.join(tmp, "b.npy")
    np.save(pa, a)
    np.save(pb, b)
    ours, pot = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        line = json_line([args.sb, "metric", "w1", pa, pb])
        ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        pot_value = ot.emd2(np.full(n, 1.0 / n), np.full(n, 1.0 / n), ot.dist(a, b, metric="euclidean"),
                            numItermax=10**9)
        pot.append(time.perf_counter() - t0)
x, y = statistics.median(ours), statistics.median(pot)
rel = abs(line["value"] - pot_value) / pot_value
rows.append((f"`w1`, n = m = {n}, d = 5 (value {line['value']:.12f}, POT {pot_value:.12f}, rel. diff {rel:.1e})",
             f"{x:.2f} s", f"{y:.2f} s (POT)", f"{x / y:.2f}× the time", "≤ 0.5× the time, rel. diff ≤ 1e-9",
             "–", "–", x / y <= 0.5 and rel <= 1e-9))

cpu = "?"
if os.path.exists("/proc/cpuinfo"):
    for l in open("/proc/cpuinfo"):
        if l.startswith("model name"):
            cpu = l.split(":", 1)[1].strip()
            break
table = [
    START,
    f"Generated {datetime.date.today()} by `python3 benchmarks/speed.py --repeats {args.repeats} --threads "
    f"{args.threads}` on {os.cpu_count()} × {cpu} ({platform.system()}), PyTorch {torch_version}, POT "
    f"{ot.__version__}, numpy {np.__version__}. Medians of {args.repeats} alternating runs; measured matrix "
    f"peak (`sb bench matmul --threads {args.threads}`) {peak:.0f} GFLOP/s.",
    "",
    "| work | sb | peer | sb against the peer | target | sb GFLOP/s (of peak) | peer GFLOP/s (of peak) | met |",
    "|---|---|---|---|---|---|---|---|",
]
table += [f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]} | {r[5]} | {r[6]} | {'yes' if r[7] else 'no'} |"
          for r in rows]
table.append(END)
text = "\n".join(table)
print(text)

doc = open(args.out).read() if os.path.exists(args.out) else f"# Performance\n\n{START}\n{END}\n"
if START in doc and END in doc:
    doc = doc[:doc.index(START)] + text + doc[doc.index(END) + len(END):]
else:
    doc = doc.rstrip() + "\n\n" + text + "\n"
open(args.out, "w").write(doc)
print(f"wrote {args.out}", file=sys.stderr)

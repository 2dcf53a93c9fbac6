"""W1 against σ from a sweep's run directory: one row per method, one column per σ.

    python3 benchmarks/sigma_table.py runs/sweeps/eb-sigma [more run dirs of the same sweep]

Reads each directory's results.json (rows of `<problem> sigma=<value> t=<time>`), averages each
(method, σ) over the held-out times for every seed that has all of them, then over seeds, and prints a
Markdown table; the σ that `auto` chose is listed per held-out time.
"""
import json
import sys
from collections import defaultdict

rows = []
for d in sys.argv[1:]:
    rows += json.load(open(f"{d}/results.json"))

values = defaultdict(lambda: defaultdict(dict))  # (method, sigma) -> seed -> time -> value
auto = {}
times = set()
for r in rows:
    name, _, rest = r["benchmark"].partition(" sigma=")
    sigma, _, t = rest.partition(" t=")
    times.add(t)
    values[(r["method"], sigma)][r["seed"]][t] = r["value"]
    if r["params"].get("sigma_rule") == "auto":
        auto[t] = float(r["params"]["sigma"])

sigmas = []
methods = []
for method, sigma in values:
    if sigma not in sigmas:
        sigmas.append(sigma)
    if method not in methods:
        methods.append(method)
sigmas.sort(key=lambda s: (s != "auto", float(s) if s != "auto" else 0.0))

print("| method | " + " | ".join(f"σ = {s}" for s in sigmas) + " |")
print("|---|" + "---|" * len(sigmas))
for method in methods:
    cells = []
    for s in sigmas:
        per_seed = [sum(v.values()) / len(v) for v in values[(method, s)].values() if len(v) == len(times)]
        cells.append(f"{sum(per_seed) / len(per_seed):.3f}" if per_seed else "—")
    print(f"| {method} | " + " | ".join(cells) + " |")
print()
print("σ chosen by `auto`: " + ", ".join(f"t = {t}: {auto[t]:.3f}" for t in sorted(auto, key=float)))

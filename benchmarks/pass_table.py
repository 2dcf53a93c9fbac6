#!/usr/bin/env python3
"""Per-iteration W2 of a run's models, from each model directory's metrics_log.jsonl.

    python3 benchmarks/pass_table.py runs/i1-dsb-steps noise-digits

For every method folder under RUN/models/BENCHMARK: the mean ± std over seeds of `w2_backward` after the
pass that ends each IPF iteration's backward half (odd passes, as DSB starts backward), as a Markdown table.
Standard library only.
"""
import json
import statistics
import sys
from pathlib import Path


def main(run: str, benchmark: str, metric: str = "w2_backward") -> None:
    base = Path(run) / "models" / benchmark
    methods = sorted(p for p in base.iterdir() if p.is_dir())
    table = {}
    for method in methods:
        for seed in sorted(method.glob("seed*")):
            for line in (seed / "metrics_log.jsonl").read_text().splitlines():
                row = json.loads(line)
                if row["pass"] % 2 == 1 and metric in row:
                    table.setdefault(method.name, {}).setdefault(row["iteration"], []).append(row[metric])
    iterations = sorted({i for m in table.values() for i in m})
    print("| method | " + " | ".join(f"iteration {i}" for i in iterations) + " |")
    print("|---|" + "---|" * len(iterations))
    for name, by_iter in table.items():
        cells = []
        for i in iterations:
            v = by_iter.get(i, [])
            cells.append(
                f"{statistics.mean(v):.2f} ± {statistics.stdev(v):.2f}" if len(v) > 1
                else (f"{v[0]:.2f}" if v else "—")
            )
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: pass_table.py RUN_DIR BENCHMARK [METRIC]")
    main(*sys.argv[1:4])

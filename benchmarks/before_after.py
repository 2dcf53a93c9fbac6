#!/usr/bin/env python3
"""Before and after a change of defaults: the means of one docs/results.md table against a new run's table.

    python3 benchmarks/before_after.py docs/results.md "## T " runs/full3/t-report

Reads the first table under the heading that starts with the given text in the markdown file (the "before"
column) and the table of the run or report directory (`results.md` or `report.md`) (the "after" column), joins them on (benchmark,
method, metric) and prints one markdown row per metric: both means with their 95% intervals.
"""
import os, sys

if len(sys.argv) != 4:
    sys.exit(__doc__)


def table(lines):
    rows = {}
    for line in lines:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 6 or cells[0] in ("benchmark", "") or set(cells[0]) <= set("-"):
            continue
        mean = cells[3].split("±")[0].strip()
        if mean in ("—", ""):
            continue
        rows[(cells[0], cells[1], cells[2])] = (float(mean), cells[4])
    return rows


def section(path, heading):
    lines = open(path).read().splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith(heading))
    body = []
    for l in lines[start + 1:]:
        if l.startswith("## "):
            break
        body.append(l)
    first = next(i for i, l in enumerate(body) if l.startswith("| benchmark"))
    end = next((i for i in range(first, len(body)) if not body[i].startswith("|")), len(body))
    return body[first:end]


before = table(section(sys.argv[1], sys.argv[2]))
run = sys.argv[3]
name = "report.md" if os.path.exists(os.path.join(run, "report.md")) else "results.md"
after = table(open(os.path.join(run, name)).read().splitlines())
print("| benchmark | method | metric | before (mean, 95% CI) | after (mean, 95% CI) | change |")
print("|---|---|---|---|---|---|")
for key in after:
    if key not in before:
        continue
    (b, bci), (a, aci) = before[key], after[key]
    change = f"{100 * (a - b) / abs(b):+.0f} %" if b else "—"
    print(f"| {key[0]} | {key[1]} | {key[2]} | {b:.4g} {bci} | {a:.4g} {aci} | {change} |")

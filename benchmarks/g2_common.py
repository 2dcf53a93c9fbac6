"""What the G1 and G2 table scripts (g2_pivot.py, seeds_table.py) share: the column order of the methods and
the row order of the problems (by d, then ε, from names such as g2-d16-eps0.1 or g1-d20)."""
import re

METHOD_ORDER = ["DSB", "DSBM-IPF", "DSBM-IMF", "LightSB", "OT-CFM", "SB-CFM", "[SF]2M-Sink"]


def problem_key(name):
    eps = re.search(r"eps([\d.]+)", name)
    return int(re.search(r"d(\d+)", name).group(1)), float(eps.group(1)) if eps else 0.0

"""What the G2 table scripts (g2_pivot.py, g2_seeds.py) share: the column order of the methods and the
row order of the problems (by d, then ε, from names such as g2-d16-eps0.1)."""
import re

METHOD_ORDER = ["DSB", "DSBM-IPF", "DSBM-IMF", "LightSB", "OT-CFM", "SB-CFM", "[SF]2M-Sink"]


def problem_key(name):
    return int(re.search(r"d(\d+)", name).group(1)), float(re.search(r"eps([\d.]+)", name).group(1))

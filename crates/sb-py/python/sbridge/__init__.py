"""sbridge: the `sb` project's Schrödinger bridges, experiment runner and exact metrics, for numpy.

- ``run`` and ``report``: experiment files (or dicts of the same keys) to run directories and
  tables, exactly as the ``sb run`` and ``sb report`` commands (the same Rust runner);
- ``Bridge``: fit any method (DSB, DSBM-IPF/IMF, OT-CFM, SB-CFM, [SF]2M, LightSB) on arrays,
  sample, save and load (the model folders of run directories, read by ``sb sample``);
- exact optimal transport, Sinkhorn, Gaussian metrics and the closed-form Gaussian
  Schrödinger bridge (crates/sb-eval).

The signatures follow POT where POT has the function (``emd``, ``emd2``, ``sinkhorn``,
``sinkhorn2``): weights ``a`` and ``b`` (an empty list means uniform) and a cost matrix ``M``.
Inputs of any float or int dtype are converted to float64. Bad input raises ``ValueError`` with
the library's message.

    >>> import numpy as np, sbridge
    >>> x = np.random.default_rng(0).standard_normal((500, 2))
    >>> y = x + 1.0
    >>> round(sbridge.wasserstein(x, y, p=2), 6)
    1.414214
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Union

import numpy as np

# How long candle's worker threads busy-wait after an operation; set before the first tensor
# operation, as the `sb` binary does (its main.rs explains the value).
os.environ.setdefault("CANDLE_BARRIER_POOL_SPIN_LIMIT", "50")

from . import _core  # noqa: E402

__all__ = [
    "run",
    "report",
    "Report",
    "Rows",
    "Bridge",
    "emd",
    "emd2",
    "EmdResult",
    "wasserstein",
    "sinkhorn",
    "sinkhorn2",
    "bw_uvp",
    "cbw_uvp",
    "gaussian_kl",
    "mmd_rbf",
    "GaussianBridge",
]

GaussianBridge = _core.GaussianBridge


# Method names: the solver's name in results, or the experiment file's `kind`.
_METHODS = {
    "dsb": {"kind": "dsb"},
    "dsbm-ipf": {"kind": "dsbm", "first_coupling": "reference"},
    "dsbm-imf": {"kind": "dsbm", "first_coupling": "independent"},
    "dsbm": {"kind": "dsbm"},
    "ot-cfm": {"kind": "ot_cfm"},
    "sb-cfm": {"kind": "sb_cfm"},
    "sf2m": {"kind": "sf2m"},
    "lightsb": {"kind": "lightsb"},
}
# Keys of the experiment file's `net:` and `train:` blocks; every other keyword goes to `method:`.
_NET = {"hidden", "activation", "time", "time_dim"}
_TRAIN = {
    "passes",
    "steps_per_pass",
    "batch_size",
    "lr",
    "cache_size",
    "cache_reuse",
    "cache_refresh",
    "warm_start",
    "ema_decay",
    "grad_clip",
}


class Bridge:
    """A trained Schrödinger bridge, any method of the `sb` runner, on numpy arrays.

        >>> bridge = sbridge.Bridge.fit(x0, x1, method="dsbm-imf", sigma=1.0, passes=4, lr=1e-3)
        >>> x1_hat = bridge.sample(x0)                      # forward: from π0 towards π1
        >>> x0_hat = bridge.sample(x1, direction="backward")
        >>> bridge.save("my-bridge"); again = sbridge.Bridge.load("my-bridge")
        >>> again = sbridge.Bridge.load("runs/quickstart/models/moons-gaussian/DSBM-IMF/seed0")

    ``method`` is ``"dsb"``, ``"dsbm-ipf"``, ``"dsbm-imf"``, ``"ot-cfm"``, ``"sb-cfm"``, ``"sf2m"`` or
    ``"lightsb"`` (or an experiment file's ``kind``). Every other keyword is an option of the
    experiment file's ``method:``, ``net:`` or ``train:`` block, with the same names and defaults
    (``num_steps``, ``hidden``, ``time``, ``passes``, ``steps_per_pass``, ``batch_size``, ``lr``,
    ``cache_size``, ``ema_decay``, ``coupling``, ``components``, …); unknown names raise
    ``ValueError``. The same data, options and seed give the same bridge, and the same bridge
    as ``sb run`` trains on a problem whose ends are these arrays as files (``kind: file``).
    ``save`` writes a model folder as ``sb run`` does (``model.yaml`` and the weights), which
    ``sb sample`` reads; ``load`` reads either. Ctrl-C stops ``fit`` with ``KeyboardInterrupt``.
    """

    def __init__(self, core):
        self._core = core

    @classmethod
    def fit(cls, x0, x1, method: str = "dsbm-imf", sigma: float = 1.0, seed: int = 0, **options) -> "Bridge":
        block = dict(_METHODS.get(method.lower(), {"kind": method}))
        net, train = {}, {}
        for key, value in options.items():
            target = net if key in _NET else train if key in _TRAIN else block
            target[key] = value.tolist() if isinstance(value, np.ndarray) else value
        entry = json.dumps({"method": block, "net": net, "train": train})
        core = _core.Bridge.fit(_f64(x0, 2, "x0"), _f64(x1, 2, "x1"), entry, float(sigma), int(seed))
        return cls(core)

    @property
    def name(self) -> str:
        """The method's name in results (DSBM-IMF, SB-CFM, …)."""
        return self._core.name

    @property
    def sigma(self) -> float:
        """The reference's σ."""
        return self._core.sigma

    @property
    def config(self) -> dict:
        """The method entry trained, every default written out (as in a run's config.yaml)."""
        return json.loads(self._core.config)

    def sample(self, x, direction: str = "forward", seed: int = 0, return_trajectories: bool = False) -> np.ndarray:
        """Transports the rows of ``x``: forward from π0, backward from π1. Returns the end
        points (n, d), or with ``return_trajectories`` every Euler state (steps + 1, n, d).
        The noise comes from ``seed`` as in ``sb sample --seed`` (the same points)."""
        return self._core.sample(_f64(x, 2, "x"), direction, int(seed), bool(return_trajectories))

    def save(self, path) -> None:
        """Writes the weights and ``model.yaml`` in the folder ``path`` (a run directory's model
        folder: ``sb sample`` reads it)."""
        self._core.save(str(path))

    @classmethod
    def load(cls, path) -> "Bridge":
        """Reads a model folder written by :meth:`save` or by ``sb run``."""
        return cls(_core.Bridge.load(str(path)))

    def __repr__(self) -> str:
        return f"<sbridge.Bridge {self.name}>"


class Rows(list):
    """The result rows of a run (one dict per benchmark, method, seed and metric: ``benchmark``,
    ``method``, ``params``, ``metric``, ``value``, ``seed``, ``wall_s``), with the run directory
    as ``run_dir``."""

    def __init__(self, rows, run_dir: str):
        super().__init__(rows)
        self.run_dir = run_dir


def run(
    experiment: Union[str, os.PathLike, dict],
    out: Union[str, os.PathLike, None] = None,
    seeds: Optional[Sequence[int]] = None,
    shard: Optional[str] = None,
    resume: Union[str, os.PathLike, None] = None,
) -> Rows:
    """Runs an experiment as ``sb run`` does: the same jobs, files and numbers.

    ``experiment`` is an experiment file's path, or a dict of the same keys (its relative data
    paths are read from the current folder). ``out`` is the run directory (by default
    ``runs/<name>``, ``runs/<name>-2``, …); ``seeds`` replaces the file's seeds; ``shard``
    (``"i/n"``) runs one shard of the jobs. ``resume`` continues an interrupted run directory
    instead (``experiment`` is then ignored). Nothing is printed; Ctrl-C stops the run with
    ``KeyboardInterrupt`` and every finished pass stays checkpointed.

        >>> rows = sbridge.run("experiments/quickstart.yaml", out="runs/qs")
        >>> rows.run_dir, rows[0]["metric"], rows[0]["value"]
    """
    seeds = None if seeds is None else [int(s) for s in seeds]
    out = None if out is None else os.fspath(out)
    if resume is not None:
        run_dir, rows = _core.run(resume=os.fspath(resume))
    elif isinstance(experiment, dict):
        run_dir, rows = _core.run(
            text=json.dumps(experiment), base=os.getcwd(), out=out, seeds=seeds, shard=shard
        )
    else:
        run_dir, rows = _core.run(path=os.fspath(experiment), out=out, seeds=seeds, shard=shard)
    return Rows(json.loads(rows), run_dir)


@dataclass
class Report:
    """Run directories of one experiment merged into one table, as ``sb report`` prints it:
    ``markdown`` (the table), ``lines`` (one dict per table line: benchmark, method, metric,
    seeds, mean, std, ci95, published, wall_s), ``rows`` (every result row) and ``missing``
    (jobs of the experiment found in none of the directories)."""

    markdown: str
    lines: List[dict] = field(default_factory=list)
    rows: List[dict] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)

    def __str__(self) -> str:
        return self.markdown


def report(dirs, out: Union[str, os.PathLike, None] = None) -> Report:
    """Merges run directories (for example the shards of one experiment) into one table, as
    ``sb report``; with ``out``, also writes report.md, report.csv, report.json and the merged
    results.json there."""
    if isinstance(dirs, (str, os.PathLike)):
        dirs = [dirs]
    markdown, lines, rows, missing = _core.report(
        [os.fspath(d) for d in dirs], None if out is None else os.fspath(out)
    )
    return Report(markdown, json.loads(lines), json.loads(rows), list(missing))


def _f64(x, ndim: int, name: str) -> np.ndarray:
    arr = np.ascontiguousarray(x, dtype=np.float64)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    return arr


def _weights(w, name: str) -> np.ndarray:
    if w is None:
        return np.empty(0)
    return _f64(w, 1, name)


@dataclass
class EmdResult:
    """The optimal plan with its certificate: ``cost = Σ plan·M``, dual potentials with
    ``alpha_i + beta_j ≤ M_ij`` (equality on the plan's support), ``converged`` (False only
    when ``max_pivots`` stopped the solver) and the number of pivots."""

    plan: np.ndarray
    cost: float
    alpha: np.ndarray
    beta: np.ndarray
    converged: bool
    pivots: int


def emd(a, b, M, log: bool = False, max_pivots: Optional[int] = None):
    """Exact optimal transport by the network simplex: the plan (n × m), as POT's ``ot.emd``.

    With ``log=True`` returns ``(plan, info)`` with ``info`` an :class:`EmdResult`.
    Weights must be non-negative with equal sums; empty means uniform.
    """
    M = _f64(M, 2, "M")
    plan, cost, alpha, beta, converged, pivots = _core.emd(
        _weights(a, "a"), _weights(b, "b"), M, max_pivots
    )
    if log:
        return plan, EmdResult(plan, cost, alpha, beta, converged, pivots)
    return plan


def emd2(a, b, M, max_pivots: Optional[int] = None) -> float:
    """The optimal transport cost ``Σ plan·M``, as POT's ``ot.emd2``."""
    return emd(a, b, M, log=True, max_pivots=max_pivots)[1].cost


def wasserstein(x, y, p: int = 2) -> float:
    """Exact W1 (``p=1``, Euclidean cost) or W2 (``p=2``, root of the optimal squared cost)
    between two uniformly weighted point clouds of shapes (n, d) and (m, d). Large clouds are
    solved without the dense cost matrix (memory O((n + m)·d))."""
    value, _, _ = _core.wasserstein(_f64(x, 2, "x"), _f64(y, 2, "y"), int(p))
    return value


def sinkhorn(
    a,
    b,
    M,
    reg: float,
    tol: float = 1e-9,
    max_iter: int = 100_000,
    eps_scaling: bool = True,
    log: bool = False,
):
    """Entropic optimal transport, ``min ⟨P, M⟩ − reg·H(P)``: the plan, as POT's ``ot.sinkhorn``.

    Stabilised (log-domain safe) iterations with ε-scaling for small ``reg``; stops when the
    first marginal's L1 error is below ``tol`` (the second is exact after each iteration).
    With ``log=True`` returns ``(plan, info)``, ``info`` a dict with ``cost``, the potentials
    ``f`` and ``g``, ``iterations``, ``converged`` and ``marginal_error``.
    """
    plan, info = _core.sinkhorn(
        _weights(a, "a"),
        _weights(b, "b"),
        _f64(M, 2, "M"),
        float(reg),
        float(tol),
        int(max_iter),
        bool(eps_scaling),
    )
    return (plan, info) if log else plan


def sinkhorn2(a, b, M, reg: float, **options) -> float:
    """``⟨P, M⟩`` of the entropic plan (without the entropy term)."""
    return sinkhorn(a, b, M, reg, log=True, **options)[1]["cost"]


def bw_uvp(samples, mean, cov) -> float:
    """BW2²-UVP in percent: ``100 · BW2²(N(m̂, Σ̂), N(mean, cov)) / (½ tr cov)`` with the
    samples' mean and unbiased covariance. ``cov`` must be symmetric positive semi-definite."""
    return _core.bw_uvp(_f64(samples, 2, "samples"), _f64(mean, 1, "mean"), _f64(cov, 2, "cov"))


def cbw_uvp(
    samples: Sequence, means: Sequence, covs: Sequence, target_var_trace: float
) -> float:
    """Conditional BW2²-UVP in percent: for each conditioning input ``k``, ``samples[k]``
    against ``N(means[k], covs[k])``; BW2² averaged over inputs, over ``½ tr Var(π1)``."""
    return _core.cbw_uvp(
        [_f64(s, 2, "samples[k]") for s in samples],
        [_f64(m, 1, "means[k]") for m in means],
        [_f64(c, 2, "covs[k]") for c in covs],
        float(target_var_trace),
    )


def gaussian_kl(m1, s1, m2, s2) -> float:
    """``KL(N(m1, s1) ‖ N(m2, s2))``."""
    return _core.gaussian_kl(_f64(m1, 1, "m1"), _f64(s1, 2, "s1"), _f64(m2, 1, "m2"), _f64(s2, 2, "s2"))


def mmd_rbf(x, y, h: float = 1.0) -> float:
    """Biased MMD² with the Gaussian kernel ``exp(−‖x − y‖²/(2h²))``."""
    return _core.mmd_rbf(_f64(x, 2, "x"), _f64(y, 2, "y"), float(h))

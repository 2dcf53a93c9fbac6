"""sbridge against the independent references in crates/sb-eval/tests/fixtures (POT and SciPy
values), and its errors. Run after `pip install` of the wheel: `pytest crates/sb-py/tests`."""

import json
from pathlib import Path

import numpy as np
import pytest

import sbridge

FIXTURES = Path(__file__).resolve().parents[2] / "sb-eval" / "tests" / "fixtures"


def load(name):
    return np.load(FIXTURES / name)


def reference(name):
    return json.loads((FIXTURES / name).read_text())["cases"]


@pytest.mark.parametrize("case", reference("wasserstein_reference.json"), ids=lambda c: c["a"])
def test_wasserstein_and_emd2_agree_with_pot(case):
    a, b = load(case["a"]), load(case["b"])
    for p, key in [(1, "w1"), (2, "w2")]:
        assert sbridge.wasserstein(a, b, p=p) == pytest.approx(case[key], rel=1e-9)
    diff = a[:, None, :] - b[None, :, :]
    M = np.sqrt((diff**2).sum(-1))
    assert sbridge.emd2([], [], M) == pytest.approx(case["w1"], rel=1e-9)


def test_emd_plan_and_potentials_certify_optimality():
    a, b = load("w_5d_300x500_a.npy"), load("w_5d_300x500_b.npy")
    M = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    plan, info = sbridge.emd([], [], M, log=True)
    assert info.converged and plan.shape == (300, 500)
    np.testing.assert_allclose(plan.sum(1), 1 / 300, atol=1e-15)
    np.testing.assert_allclose(plan.sum(0), 1 / 500, atol=1e-15)
    reduced = M - info.alpha[:, None] - info.beta[None, :]
    assert reduced.min() > -1e-9 * M.max()
    assert np.abs(reduced[plan > 0]).max() < 1e-9 * M.max()
    dual = info.alpha.mean() + info.beta.mean()
    assert dual == pytest.approx(info.cost, rel=1e-12)
    assert (plan * M).sum() == pytest.approx(info.cost, rel=1e-12)


def test_emd_with_weights_and_an_iteration_cap():
    M = np.array([[0.0, 1.0], [1.0, 0.0]])
    plan = sbridge.emd([0.9, 0.1], [0.5, 0.5], M)
    np.testing.assert_allclose(plan, [[0.5, 0.4], [0.0, 0.1]])
    _, info = sbridge.emd([], [], load("w_2d_200_a.npy")[:, :1] @ np.ones((1, 200)), log=True, max_pivots=3)
    assert not info.converged and info.pivots == 3


@pytest.mark.parametrize("case", reference("sinkhorn_reference.json"), ids=lambda c: f"{c['a']}-{c['reg']}")
def test_sinkhorn_agrees_with_pot(case):
    a, b = load(case["a"]), load(case["b"])
    M = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    plan, info = sbridge.sinkhorn([], [], M, case["reg"], tol=1e-11, log=True)
    assert info["converged"] and info["marginal_error"] < 1e-11
    assert info["cost"] == pytest.approx(case["cost"], rel=1e-7)
    np.testing.assert_allclose(plan[0, : len(case["row0"])], case["row0"], atol=1e-7 * plan[0].max())
    assert sbridge.sinkhorn2([], [], M, case["reg"], tol=1e-11) == pytest.approx(case["cost"], rel=1e-7)


def test_bw_uvp_agrees_with_scipy():
    for case in reference("bw_uvp_reference.json"):
        got = sbridge.bw_uvp(load(case["samples"]), load(case["mean"]), load(case["cov"]))
        assert got == pytest.approx(case["bw2_uvp_percent"], rel=1e-9)


def test_gaussian_bridge_agrees_with_scipy():
    ref = np.load(FIXTURES / "gaussian_sb_reference.npz")
    for d in [2, 16, 64]:
        for eps in ["0.1", "1", "10"]:
            g = sbridge.GaussianBridge(ref[f"d{d}_mu0"], ref[f"d{d}_Sigma0"], ref[f"d{d}_mu1"], ref[f"d{d}_Sigma1"], float(eps))
            C = ref[f"d{d}_eps{eps}_C"]
            assert np.linalg.norm(g.cross_covariance - C) <= 1e-8 * np.linalg.norm(C)
            for t in ["0.25", "0.5", "0.75"]:
                S = ref[f"d{d}_eps{eps}_Sigma_t{t}"]
                _, cov = g.marginal(float(t))
                assert np.linalg.norm(cov - S) <= 1e-8 * np.linalg.norm(S)


def test_gaussian_bridge_samples_are_seeded_and_match_the_plan():
    g = sbridge.GaussianBridge(np.zeros(2), np.eye(2), np.ones(2), 2 * np.eye(2), 1.0)
    # Σ0 = I, Σ1 = 2I, ε = 1: C = ½((4·2 + 1)^½ − 1) I = I.
    np.testing.assert_allclose(g.cross_covariance, np.eye(2), atol=1e-12)
    x0, x1 = g.sample_plan(20000, seed=3)
    again, _ = g.sample_plan(20000, seed=3)
    np.testing.assert_array_equal(x0, again)
    emp = np.cov(np.hstack([x0, x1]).T)
    np.testing.assert_allclose(emp, g.plan_covariance(), atol=0.06)
    m, c = g.conditional(np.array([1.0, -1.0]))
    np.testing.assert_allclose(m, [2.0, 0.0], atol=1e-12)  # μ1 + Cᵀ Σ0⁻¹ (x − μ0)
    np.testing.assert_allclose(c, np.eye(2), atol=1e-12)  # Σ1 − Cᵀ Σ0⁻¹ C


def test_kl_mmd_and_cbw_uvp():
    m, s = np.zeros(3), np.diag([1.0, 2.0, 3.0])
    assert sbridge.gaussian_kl(m, s, m, s) == pytest.approx(0.0, abs=1e-12)
    # 1-D: KL(N(0,1) ‖ N(1,2)) = ½(1/2 + 1/2 − 1 + ln 2).
    kl = sbridge.gaussian_kl([0.0], [[1.0]], [1.0], [[2.0]])
    assert kl == pytest.approx(0.5 * np.log(2.0), rel=1e-12)
    x = np.random.default_rng(0).standard_normal((200, 2))
    assert sbridge.mmd_rbf(x, x) == pytest.approx(0.0, abs=1e-12)
    assert sbridge.mmd_rbf(x, x + 1.0) > 0.1
    samples = [x, x + 1.0]
    exact = sbridge.cbw_uvp(samples, [x.mean(0), (x + 1.0).mean(0)], [np.cov(x.T)] * 2, 4.0)
    assert exact == pytest.approx(0.0, abs=1e-9)


def test_bad_input_raises_value_error_with_the_reason():
    x = np.zeros((5, 2))
    with pytest.raises(ValueError, match="p must be 1 or 2"):
        sbridge.wasserstein(x, x, p=3)
    with pytest.raises(ValueError, match="dimension"):
        sbridge.wasserstein(x, np.zeros((5, 3)))
    with pytest.raises(ValueError, match="not positive semi-definite"):
        sbridge.bw_uvp(np.random.default_rng(1).standard_normal((10, 2)), np.zeros(2), [[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(ValueError, match="must be 2-D"):
        sbridge.emd2([], [], np.zeros(3))
    with pytest.raises(ValueError, match="equal sums"):
        sbridge.emd2([0.5, 0.5], [1.0, 1.0], np.zeros((2, 2)))
    with pytest.raises(ValueError, match="reg must be > 0"):
        sbridge.sinkhorn([], [], np.zeros((2, 2)), 0.0)
    with pytest.raises(ValueError, match="non-finite"):
        sbridge.wasserstein(np.array([[np.nan, 0.0]]), x)


def test_the_docstring_example():
    x = np.random.default_rng(0).standard_normal((500, 2))
    assert round(sbridge.wasserstein(x, x + 1.0, p=2), 6) == 1.414214


def gaussians(n, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 2)) * 0.5 - 1.0, rng.standard_normal((n, 2)) + 1.0


@pytest.mark.parametrize(
    "method, options",
    [
        ("dsbm-imf", {"num_steps": 10, "hidden": [64], "passes": 2, "steps_per_pass": 600, "lr": 3e-3, "cache_size": 400}),
        ("dsb", {"num_steps": 10, "hidden": [64], "passes": 6, "steps_per_pass": 600, "lr": 3e-3, "cache_size": 200}),
        ("sb-cfm", {"num_steps": 10, "hidden": [64], "passes": 2, "steps_per_pass": 600, "lr": 3e-3, "cache_size": 400}),
        ("lightsb", {"components": 2, "steps": 300}),
    ],
)
def test_bridge_fit_sample_save_load(tmp_path, method, options):
    x0, x1 = gaussians(400, 0)
    bridge = sbridge.Bridge.fit(x0, x1, method=method, sigma=1.0, seed=1, **options)
    again = sbridge.Bridge.fit(x0, x1, method=method, sigma=1.0, seed=1, **options)
    forward = bridge.sample(x0, seed=2)
    np.testing.assert_array_equal(forward, again.sample(x0, seed=2))
    assert forward.shape == (400, 2) and np.isfinite(forward).all()
    # Carried towards π1 = N(1, I): the mean moves from −1 most of the way to 1 (DSB, three IPF
    # iterations here, least far), and back.
    backward = bridge.sample(x1, direction="backward", seed=2)
    assert ((forward.mean(0) + 1.0) / 2 > 0.6).all(), forward.mean(0)
    assert ((1.0 - backward.mean(0)) / 2 > 0.6).all(), backward.mean(0)
    path = bridge.sample(x0[:5], seed=3, return_trajectories=True)
    assert path.ndim == 3 and path.shape[1:] == (5, 2)
    np.testing.assert_allclose(path[0], x0[:5], atol=1e-6)
    bridge.save(tmp_path / "b")
    loaded = sbridge.Bridge.load(tmp_path / "b")
    assert loaded.name == bridge.name and loaded.config == bridge.config
    np.testing.assert_allclose(loaded.sample(x0, seed=2), forward, atol=1e-5)


def test_bridge_names_and_options_follow_the_experiment_file():
    x0, x1 = gaussians(64, 1)
    short = {"num_steps": 5, "hidden": [8], "passes": 1, "steps_per_pass": 5, "cache_size": 32}
    assert sbridge.Bridge.fit(x0, x1, method="dsbm-ipf", **short).name.startswith("DSBM-IPF")
    bridge = sbridge.Bridge.fit(x0, x1, method="dsbm-imf", **{**short, "passes": 2})
    assert bridge.name == "DSBM-IMF"
    config = bridge.config
    assert config["method"]["first_coupling"] == "independent"
    assert config["train"]["passes"] == 2 and config["train"]["batch_size"] == 256  # a default
    with pytest.raises(ValueError, match="unknown field `learning_rate`"):
        sbridge.Bridge.fit(x0, x1, method="dsb", learning_rate=1e-3)
    with pytest.raises(ValueError, match="unknown variant `nope`"):
        sbridge.Bridge.fit(x0, x1, method="nope")
    with pytest.raises(ValueError, match="direction must be"):
        bridge.sample(x0, direction="sideways")
    with pytest.raises(ValueError, match="columns"):
        bridge.sample(np.zeros((3, 5)))

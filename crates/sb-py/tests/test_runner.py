"""sbridge's runner (run, report), model folders shared with the `sb` command, exceptions,
the released GIL and Ctrl-C. `SB_BIN` names the `sb` binary (test.sh builds it)."""

import _thread
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import sbridge

ROOT = Path(__file__).resolve().parents[3]
SB = os.environ.get("SB_BIN", str(ROOT / "target" / "debug" / "sb"))

# One short DSBM-IMF entry, the same for the runner and Bridge.fit.
NET = {"hidden": [16, 16]}
TRAIN = {"passes": 2, "steps_per_pass": 60, "batch_size": 64, "lr": 1e-3, "cache_size": 200}


def ends(tmp_path, n=300):
    rng = np.random.default_rng(5)
    x0 = rng.standard_normal((n, 2)) * 0.5 - 1.0
    x1 = rng.standard_normal((n, 2)) + 1.0
    np.save(tmp_path / "x0.npy", x0)
    np.save(tmp_path / "x1.npy", x1)
    return x0, x1


def experiment(seeds=(0,)):
    return {
        "name": "py-run",
        "seeds": list(seeds),
        "problems": [
            {
                "name": "two-files",
                "sigma": 1.0,
                "pi0": {"kind": "file", "path": "x0.npy"},
                "pi1": {"kind": "file", "path": "x1.npy"},
            }
        ],
        "methods": [{"method": {"kind": "dsbm", "first_coupling": "independent"}, "net": NET, "train": TRAIN}],
        "eval": {"samples": 100, "metrics": ["w2"]},
    }


def test_run_from_a_dict_trains_the_bridge_that_fit_trains(tmp_path, monkeypatch):
    x0, x1 = ends(tmp_path)
    monkeypatch.chdir(tmp_path)  # the dict's relative paths are read from here
    rows = sbridge.run(experiment(), out=tmp_path / "run")
    assert Path(rows.run_dir) == tmp_path / "run"
    assert {r["metric"] for r in rows} == {"w2_forward", "w2_backward"}
    assert all(r["method"] == "DSBM-IMF" and r["seed"] == 0 and r["value"] > 0 for r in rows)
    assert (tmp_path / "run" / "results.md").is_file()
    from_run = sbridge.Bridge.load(tmp_path / "run" / "models" / "two-files" / "DSBM-IMF" / "seed0")
    fitted = sbridge.Bridge.fit(x0, x1, method="dsbm-imf", sigma=1.0, seed=0, **NET, **TRAIN)
    np.testing.assert_array_equal(fitted.sample(x0, seed=4), from_run.sample(x0, seed=4))
    np.testing.assert_array_equal(
        fitted.sample(x1, direction="backward", seed=4), from_run.sample(x1, direction="backward", seed=4)
    )


def test_run_from_a_file_with_seeds_and_shards_then_report(tmp_path):
    ends(tmp_path)
    path = tmp_path / "exp.json"  # JSON is YAML
    path.write_text(__import__("json").dumps(experiment()))
    a = sbridge.run(path, out=tmp_path / "a", seeds=[0, 1], shard="0/2")
    b = sbridge.run(path, out=tmp_path / "b", seeds=[0, 1], shard="1/2")
    assert {r["seed"] for r in a} | {r["seed"] for r in b} == {0, 1}
    merged = sbridge.report([a.run_dir, b.run_dir], out=tmp_path / "merged")
    assert merged.missing == []
    line = next(l for l in merged.lines if l["method"] == "DSBM-IMF" and l["metric"] == "w2_forward")
    assert line["seeds"] == 2
    values = [r["value"] for r in merged.rows if r["metric"] == "w2_forward"]
    assert line["mean"] == pytest.approx(np.mean(values), rel=1e-12)
    assert "| two-files | DSBM-IMF | w2_forward |" in merged.markdown
    assert (tmp_path / "merged" / "report.md").read_text() == merged.markdown


@pytest.mark.skipif(not Path(SB).is_file(), reason=f"no sb binary at {SB} (test.sh builds it)")
def test_a_model_saved_by_python_is_read_by_sb_sample_and_back(tmp_path):
    x0, x1 = ends(tmp_path)
    bridge = sbridge.Bridge.fit(x0, x1, method="sb-cfm", sigma=1.0, seed=3, **NET, **TRAIN)
    bridge.save(tmp_path / "model")
    out = tmp_path / "moved.npy"
    subprocess.run(
        [SB, "sample", str(tmp_path / "model"), "--direction", "forward", "--from", str(tmp_path / "x0.npy"), "--out", str(out), "--seed", "9"],
        check=True,
        capture_output=True,
    )
    np.testing.assert_array_equal(np.load(out).astype(np.float64), bridge.sample(x0, seed=9))
    again = sbridge.Bridge.load(tmp_path / "model")
    assert again.name == bridge.name and again.config == bridge.config and again.sigma == 1.0
    np.testing.assert_array_equal(again.sample(x1, direction="backward"), bridge.sample(x1, direction="backward"))


def test_errors_are_the_exceptions_a_user_expects(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.yaml"):
        sbridge.run(tmp_path / "nowhere.yaml")
    bad = experiment()
    bad["methods"][0]["train"] = {**TRAIN, "lr": -1.0}
    with pytest.raises(ValueError, match="train.lr must be > 0"):
        sbridge.run(bad, out=tmp_path / "bad")
    assert not (tmp_path / "bad").exists()  # refused before anything was written
    with pytest.raises(ValueError, match="seeds lists 1 twice"):
        sbridge.run(experiment(), seeds=[1, 1])
    with pytest.raises(ValueError, match="shard"):
        sbridge.run(experiment(), shard="3/2")
    with pytest.raises(FileNotFoundError):
        sbridge.Bridge.load(tmp_path / "no-model")
    with pytest.raises(ValueError, match="not a run directory"):
        sbridge.report([tmp_path])


def test_inputs_of_any_float_dtype_and_memory_order_give_the_same_value():
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((300, 3)), rng.standard_normal((200, 3)) + 0.5
    reference = sbridge.wasserstein(x, y, p=2)
    # The same float64 values in Fortran order and as a strided view: the same value, bit for bit.
    assert sbridge.wasserstein(np.asfortranarray(x), np.asfortranarray(y), p=2) == reference
    wide = np.hstack([x, x])
    assert not wide[:, :3].flags["C_CONTIGUOUS"]
    assert sbridge.wasserstein(wide[:, :3], y, p=2) == reference
    # Integers and float32 are read as the float64 of the same values.
    ints_x, ints_y = np.round(10 * x).astype(np.int32), np.round(10 * y).astype(np.int64)
    assert sbridge.wasserstein(ints_x, ints_y, p=2) == sbridge.wasserstein(
        ints_x.astype(np.float64), ints_y.astype(np.float64), p=2
    )
    x32, y32 = x.astype(np.float32), y.astype(np.float32)
    assert sbridge.wasserstein(x32, y32, p=2) == sbridge.wasserstein(
        x32.astype(np.float64), y32.astype(np.float64), p=2
    )
    assert sbridge.wasserstein(x32, y32, p=2) == pytest.approx(reference, rel=1e-5)


def _count_ticks_during(solve):
    """Ticks a 1 ms sleeper thread made while `solve` ran, and the seconds it ran."""
    ticks, running = [0], [True]

    def count():
        while running[0]:
            ticks[0] += 1
            time.sleep(0.001)

    counter = threading.Thread(target=count)
    counter.start()
    time.sleep(0.05)
    before = ticks[0]
    start = time.perf_counter()
    solve()
    elapsed = time.perf_counter() - start
    during = ticks[0] - before
    running[0] = False
    counter.join()
    return during, elapsed


def test_the_gil_is_released_during_emd2():
    # The problem grows until one solve lasts long enough to tell the two cases apart on a fast
    # machine (a solve of 1,500 points took 45 ms on one).
    rng = np.random.default_rng(0)
    for n in (1500, 3000, 6000):
        x, y = rng.standard_normal((n, 5)), rng.standard_normal((n, 5))
        M = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
        during, elapsed = _count_ticks_during(lambda: sbridge.emd2([], [], M))
        if elapsed > 0.1:
            break
    # A thread that held the GIL for the whole solve would leave the counter where it was.
    assert elapsed > 0.05, elapsed
    assert during > 0.3 * elapsed / 0.002, (during, elapsed)


def test_ctrl_c_stops_fit_with_keyboard_interrupt():
    # Python's own SIGINT handler, as in an interactive session: a process started in the
    # background by a shell inherits SIGINT ignored, and then Ctrl-C never reaches Python at all.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        x0, x1 = np.random.default_rng(0).standard_normal((2, 500, 2))
        timer = threading.Timer(0.5, _thread.interrupt_main)
        timer.start()
        start = time.perf_counter()
        with pytest.raises(KeyboardInterrupt):
            sbridge.Bridge.fit(x0, x1, method="dsbm-imf", passes=2, steps_per_pass=10**6, hidden=[32])
        timer.cancel()
        assert time.perf_counter() - start < 30
    finally:
        signal.signal(signal.SIGINT, previous)

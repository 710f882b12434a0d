import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import chex
import jax
import numpy as np
import pytest

from jaxfp.train import (
    Checkpointer,
    NonFiniteError,
    fit,
    make_train_step,
    prepare_workdir,
    read_metrics,
    regression_loss,
)

from . import small_problem as sp

SCRIPT = os.path.join(os.path.dirname(__file__), "small_problem.py")


def test_one_step_no_nan_jit_equals_no_jit_and_compiles_once():
    data = sp.dataset()
    batch = sp.batch_at_factory(data, 16, 0)(0)
    loss = regression_loss(sp.model().apply)
    rng = jax.random.key(3)
    plain = make_train_step(loss, jit=False)
    s1, m1 = plain(sp.initial_state(), batch, rng)
    traced = jax.jit(
        chex.assert_max_traces(make_train_step(loss, jit=False), n=1), donate_argnums=(0,)
    )
    state = sp.initial_state()
    for step in range(3):
        state, m2 = traced(state, sp.batch_at_factory(data, 16, 0)(step), rng)
        if step == 0:
            for name in m1:
                np.testing.assert_allclose(m1[name], m2[name], rtol=2e-5, atol=1e-6)
            chex.assert_trees_all_close(s1.params, state.params, rtol=2e-5, atol=1e-6)
            chex.assert_trees_all_close(s1.batch_stats, state.batch_stats, rtol=2e-5, atol=1e-6)
    assert all(np.isfinite(float(v)) for v in m2.values())
    assert {"loss", "mse", "grad_norm", "param_norm", "update_norm", "finite"} <= set(m2)
    assert int(state.step) == 3


def test_same_seed_same_run(tmp_path):
    a, eval_a = sp.run(str(tmp_path / "a"), 12)
    b, eval_b = sp.run(str(tmp_path / "b"), 12)
    chex.assert_trees_all_equal(a.params, b.params)
    assert eval_a == eval_b and len(eval_a) == 3  # steps 5, 10 and the last
    strip = lambda rows: [r for r in rows]  # noqa: E731
    assert strip(read_metrics(tmp_path / "a")) == strip(read_metrics(tmp_path / "b"))
    assert list((tmp_path / "a" / "tensorboard").glob("events.out.tfevents.*"))
    assert json.loads((tmp_path / "a" / "config.json").read_text())["seed"] == 7
    # The same run in the same workdir restores the final checkpoint: nothing is trained again.
    again, _ = sp.run(str(tmp_path / "a"), 12)
    chex.assert_trees_all_equal(a.params, again.params)


def _run_script(workdir, steps, kill_after_lines=None, delay=0.15):
    proc = subprocess.Popen(
        [sys.executable, SCRIPT, str(workdir), str(steps), str(delay)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    if kill_after_lines is None:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()[-2000:]
        return
    metrics = workdir / "metrics.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline:
        lines = metrics.read_text().count("\n") if metrics.exists() else 0
        if lines >= kill_after_lines or proc.poll() is not None:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_killed_run_resumes_to_the_same_result(tmp_path):
    """SIGKILL at two points (between checkpoints), restart, compare with an unbroken run."""
    steps = 20
    _run_script(tmp_path / "unbroken", steps, delay=0.0)
    broken = tmp_path / "broken"
    kill_points = np.random.default_rng(20261123).choice(np.arange(4, 17), 2, replace=False)
    for kill_at in sorted(kill_points):
        _run_script(broken, steps, kill_after_lines=int(kill_at))
    assert not (broken / "final_params.npz").exists()
    _run_script(broken, steps, delay=0.0)
    a, b = np.load(tmp_path / "unbroken" / "final_params.npz"), np.load(broken / "final_params.npz")
    assert sorted(a.files) == sorted(b.files)
    for name in a.files:
        np.testing.assert_array_equal(a[name], b[name])
    rows_a, rows_b = read_metrics(tmp_path / "unbroken"), read_metrics(broken)
    assert [r["step"] for r in rows_b if "loss" in r] == list(range(1, steps + 1))
    assert rows_a == rows_b


def test_a_different_config_clears_the_workdir_and_says_so(tmp_path, capsys):
    sp.run(str(tmp_path), 6)
    assert not prepare_workdir(str(tmp_path), dataclasses.asdict(sp.options(6)))  # same: kept
    assert (tmp_path / "checkpoints").is_dir()
    assert prepare_workdir(str(tmp_path), dataclasses.asdict(sp.options(7)))
    assert "num_steps: 6 -> 7" in capsys.readouterr().out
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "metrics.jsonl").exists()
    # A changed run trains from scratch to its own end, never restoring the other config's state.
    state, _ = sp.run(str(tmp_path), 9)
    fresh, _ = sp.run(str(tmp_path / "fresh"), 9)
    chex.assert_trees_all_equal(state.params, fresh.params)


def test_non_finite_loss_stops_with_the_last_good_checkpoint(tmp_path):
    with pytest.raises(NonFiniteError, match=r"step 8: non-finite.*last good checkpoint: step 6"):
        sp.run(str(tmp_path), 20, nan_at=7)
    restored = Checkpointer(str(tmp_path / "checkpoints")).restore_latest(sp.initial_state())
    state, _, step = restored
    assert step == 6
    assert all(np.isfinite(np.asarray(leaf)).all() for leaf in jax.tree.leaves(state.params))
    assert read_metrics(tmp_path)[-1]["finite"] == 0.0


def test_in_memory_fit_writes_no_files_and_logs_like_a_workdir_run(tmp_path, monkeypatch):
    """workdir None: no checkpoints, metrics or progress files; `record` gets what the workdir's
    writer would get, and the run is the same."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    data, opts = sp.dataset(), sp.options(6)
    step = make_train_step(regression_loss(sp.model().apply))
    logged = []
    state, history = fit(
        opts,
        None,
        sp.initial_state(),
        step,
        sp.batch_at_factory(data, opts.batch_size, opts.seed),
        sp.eval_fn(data),
        record=lambda at, metrics: logged.append({"step": at, **metrics}),
    )
    assert os.listdir(cwd) == []
    on_disk, disk_history = sp.run(str(tmp_path / "run"), 6)
    chex.assert_trees_all_equal(state.params, on_disk.params)
    assert history == disk_history
    rows = read_metrics(tmp_path / "run")
    assert [{k: float(v) for k, v in r.items()} for r in logged] == rows
    with pytest.raises(NonFiniteError, match=r"step 8: non-finite.*train ran in memory"):
        fit(
            sp.options(9),
            None,
            sp.initial_state(),
            step,
            sp.batch_at_factory(data, opts.batch_size, opts.seed, nan_at=7),
        )
    assert os.listdir(cwd) == []

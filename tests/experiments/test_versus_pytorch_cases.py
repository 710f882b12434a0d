"""experiments/bench/versus_pytorch.py's jaxfp side: the LSTM cases with either gradient are the
same network on the same batch."""

from __future__ import annotations

import numpy as np

from jaxfp.config import config_module

from ..conftest import REPO

versus_pytorch = config_module(str(REPO / "experiments" / "bench" / "versus_pytorch.py"))


def test_fused_and_flax_lstm_cases_take_the_same_first_step() -> None:
    losses = {}
    for case in ("plain_lstm", "plain_lstm_flax_lstm"):
        run, samples, flops = versus_pytorch.jax_case(case)
        metrics = run()
        losses[case] = float(metrics["loss"])
        assert samples == versus_pytorch.BATCH and flops > 0
        assert np.isfinite(float(metrics["grad_norm"])) and float(metrics["finite"]) == 1.0
    np.testing.assert_allclose(losses["plain_lstm"], losses["plain_lstm_flax_lstm"], rtol=1e-6)


def test_finite_guard_bench_times_the_guards_on_the_same_steps() -> None:
    finite_guard = config_module(str(REPO / "experiments" / "bench" / "finite_guard.py"))
    rows = finite_guard.measure(["plain_lstm"], rounds=1, steps_per_round=1)
    assert [r["guard"] for r in rows] == ["jaxfp", "cond", "where", "none", "bare"]
    assert all(r["ms_per_step"] > 0 and len(r["rounds_ms"]) == 1 for r in rows)
    assert rows[0]["ratio_to_jaxfp"] == 1.0
    losses = np.array([r["first_losses"] for r in rows])
    assert losses[0, 1] != losses[0, 0]  # the first update moved the loss, alike in all five
    np.testing.assert_allclose(losses, np.broadcast_to(losses[0], losses.shape), rtol=1e-5)
    # the swap is undone: later steps get jaxfp's own guard
    from jaxfp.train import steps

    assert steps.apply_gradients is finite_guard.GUARDS["jaxfp"]

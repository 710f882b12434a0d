"""experiments/bench/versus_pytorch.py's jaxfp side: the LSTM cases with either gradient are the
same network on the same batch."""

from __future__ import annotations

import sys

import numpy as np

from ..conftest import REPO


def test_fused_and_flax_lstm_cases_take_the_same_first_step() -> None:
    sys.path.insert(0, str(REPO / "experiments" / "bench"))
    try:
        import versus_pytorch
    finally:
        sys.path.pop(0)
    losses = {}
    for case in ("plain_lstm", "plain_lstm_flax_lstm"):
        run, samples, flops = versus_pytorch.jax_case(case)
        metrics = run()
        losses[case] = float(metrics["loss"])
        assert samples == versus_pytorch.BATCH and flops > 0
        assert np.isfinite(float(metrics["grad_norm"])) and float(metrics["finite"]) == 1.0
    np.testing.assert_allclose(losses["plain_lstm"], losses["plain_lstm_flax_lstm"], rtol=1e-6)

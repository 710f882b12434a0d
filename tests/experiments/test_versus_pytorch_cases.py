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

"""CSI positioning, Table I (`csi.table1`): each backbone trained on the labelled 10% — the same
supervised stage as the few-label suite's (one `Suite`, one loss, one optimizer), so Tables I and II
cannot drift apart. Reports parameters, forward FLOPs per sample (XLA's cost analysis), the mean
error with its CI over seeds, the 3GPP percentiles and the training time.

Timing advance and AWGN are drawn inside the jitted step from the step key, so every step sees
fresh perturbations of the same traced CSI; evaluation uses a fixed key. Targets are positions
relative to the BS scaled by `target_scale_m` (a choice: the paper does not say how it normalises).
"""

from __future__ import annotations

import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxfp.eval.plots import cdf_plot, percentile_bar_plot
from jaxfp.eval.results import error_row_over_seeds, write_results
from jaxfp.methods.csi.few_labels import PAPER_PERCENTILES
from jaxfp.methods.csi.programs import run_supervised
from jaxfp.methods.csi.suite import Suite
from jaxfp.train.state import TrainState


def model_cost(model, state: TrainState, sample: jax.Array) -> dict[str, float]:
    """Parameters (M) and forward FLOPs per sample (G) of one member, from XLA's cost analysis."""
    params, batch_stats = jax.tree.map(lambda a: a[0], (state.params, state.batch_stats))

    def forward(x):
        return model.apply({"params": params, "batch_stats": batch_stats}, x)

    compiled = jax.jit(forward).lower(jnp.zeros_like(sample[:1])).compile()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list | tuple) else cost
    return {
        "params_m": sum(p.size for p in jax.tree.leaves(params)) / 1e6,
        "gflops": float(cost.get("flops", float("nan"))) / 1e9,
    }


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Train every backbone in config.backbones for every seed; Table I plus percentiles."""
    os.makedirs(workdir, exist_ok=True)
    s = Suite(config, workdir, with_unlabelled=False)
    rows, pooled = {}, {}
    for name in config.backbones:
        print(f"[csi.table1] {name}: training", flush=True)
        start = time.perf_counter()
        model, state = run_supervised(s, backbone=name, stage=name)
        seconds = time.perf_counter() - start
        errors = np.linalg.norm(s.test_positions(model, state) - s.test_xy[None], axis=-1)
        rows[name] = {
            **model_cost(model, state, s.sample),
            **error_row_over_seeds(errors, s.seeds, PAPER_PERCENTILES),
            "train_s": seconds,
        }
        pooled[name] = errors.ravel()
    cdf_plot(pooled, os.path.join(workdir, "cdf.png"), title="CSI positioning, supervised")
    percentile_bar_plot(pooled, os.path.join(workdir, "percentiles.png"), title="error percentiles")
    split = s.split_summary()
    sizes = split["split_sizes"]
    title = (
        f"{config.data.path}: {s.dataset_size} receivers; labelled {sizes['labelled']}, "
        f"test {sizes['test']}; seeds {list(s.seeds)}"
    )
    columns = ["params_m", "gflops", "mean", *(f"p{q}" for q in PAPER_PERCENTILES), "train_s"]
    write_results(workdir, title, config, rows, columns, **split)
    return rows

"""CSI positioning with few labels (`csi.few_labels`): every method of the CSI paper's Table II and
Fig. 4 on one split, all seeds at once (see `programs` for the methods, `suite` for the machinery).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import ml_collections
import numpy as np

from jaxfp.config import ConfigError
from jaxfp.eval.plots import cdf_plot, percentile_bar_plot
from jaxfp.eval.results import error_row_over_seeds, write_results
from jaxfp.methods.csi.programs import (
    run_consistency,
    run_ensemble,
    run_fixmatch,
    run_mean_teacher,
    run_sector_heads,
    run_supervised,
)
from jaxfp.methods.csi.suite import Suite

METHOD_NAMES = (
    "supervised",
    "mean_teacher",
    "fixmatch",
    "fixmatch_distance",
    "consistency",
    "ensemble",
    "sector_heads",
)
REPORTED = (
    "supervised",
    "mean_teacher",
    "fixmatch",
    "fixmatch_distance",
    "consistency",
    "consistency_iterative",
    "ensemble",
    "ensemble_consensus",
    "sector_heads",
)
PAPER_PERCENTILES = (50, 67, 80, 90)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Run config.methods for all seeds; results.json, the table, CDF and percentile plots."""
    unknown = set(config.methods) - set(METHOD_NAMES)
    if unknown:
        raise ConfigError(
            f"config.methods: unknown {sorted(unknown)}; expected some of {METHOD_NAMES}"
        )
    os.makedirs(workdir, exist_ok=True)
    s = Suite(config, workdir)
    positions: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    extra: dict[str, Any] = {}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        print(f"[csi] {name}: training", flush=True)
        start = time.perf_counter()
        out = fn()
        seconds[name] = time.perf_counter() - start
        print(f"[csi] {name}: done in {seconds[name]:.0f} s", flush=True)
        return out

    methods = set(config.methods)
    if methods & {"supervised", "consistency"}:
        model, pretrained = timed("supervised", lambda: run_supervised(s))
        positions["supervised"] = s.test_positions(model, pretrained)
    if "mean_teacher" in methods:
        positions["mean_teacher"] = timed("mean_teacher", lambda: run_mean_teacher(s))
    if "fixmatch" in methods:
        positions["fixmatch"] = timed("fixmatch", lambda: run_fixmatch(s, "confidence"))
    if "fixmatch_distance" in methods:
        positions["fixmatch_distance"] = timed(
            "fixmatch_distance", lambda: run_fixmatch(s, "distance")
        )
    if "consistency" in methods:
        found, extra["pseudo_labels"] = timed(
            "consistency", lambda: run_consistency(s, model, pretrained)
        )
        positions.update(found)
    if "ensemble" in methods:
        found, extra["ensemble"] = timed("ensemble", lambda: run_ensemble(s))
        positions.update(found)
    if "sector_heads" in methods:
        positions["sector_heads"] = timed("sector_heads", lambda: run_sector_heads(s))
    rows, pooled = {}, {}
    for name in REPORTED:
        if name in positions:
            errors = np.linalg.norm(positions[name] - s.test_xy[None], axis=-1)
            rows[name] = error_row_over_seeds(errors, s.seeds, PAPER_PERCENTILES)
            pooled[name] = errors.ravel()
    cdf_plot(pooled, os.path.join(workdir, "cdf.png"), title="CSI positioning (all seeds)")
    percentile_bar_plot(
        pooled, os.path.join(workdir, "percentiles.png"), title="error percentiles (all seeds)"
    )
    split = s.split_summary()
    sizes = split["split_sizes"]
    title = (
        f"{config.data.path}: labelled {sizes['labelled']}, unlabelled {sizes['unlabelled']}, "
        f"test {sizes['test']}; seeds {list(s.seeds)}; backbone {config.backbone}"
    )
    columns = ["mean", "mean_ci_low", "mean_ci_high", *(f"p{q}" for q in PAPER_PERCENTILES)]
    write_results(
        workdir,
        title,
        config,
        rows,
        columns,
        seeds=list(s.seeds),
        train_seconds=seconds,
        **split,
        **extra,
    )
    return rows

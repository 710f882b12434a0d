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
from jaxfp.eval.results import error_row_over_seeds, table, write_results
from jaxfp.methods.csi.programs import (
    run_consistency,
    run_ensemble,
    run_fixmatch,
    run_mean_teacher,
    run_sector_heads,
    run_signature_wknn,
    run_supervised,
)
from jaxfp.methods.csi.suite import Suite

METHOD_NAMES = (
    "signature_wknn",
    "supervised",
    "mean_teacher",
    "fixmatch",
    "fixmatch_distance",
    "consistency",
    "ensemble",
    "sector_heads",
)
REPORTED = (
    "signature_wknn",
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


def extra_tables(
    transductive: dict[str, Any],
    columns: list[str],
    rounds: list[dict[str, Any]],
    fixmatch_selection: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The transductive table (the unlabelled pool scored), the kept-label report per round and
    what FixMatch's rules keep at the end of training."""
    out = (
        {"transductive: the unlabelled pool": table(transductive, columns)} if transductive else {}
    )
    if rounds:
        report = {
            f"round {r['round']}, r = {row['radius_m']:g} m": row
            for r in rounds
            for row in r["by_radius"]
        }
        out["kept labels (A vs B, rows not yet kept; errors against the truth)"] = table(
            report, ["kept", "kept_share", "label_error_m", "model_error_m"]
        )
    if fixmatch_selection:
        out["FixMatch at the end of training: what its rule keeps of the unlabelled pool"] = table(
            fixmatch_selection, ["kept_share", "kept_error_m", "rejected_error_m", "all_error_m"]
        )
    return out


def by_method(name: str, scored: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """{'test': xy, 'unlabelled': xy} of one method -> {'test': {name: xy}, ...}."""
    return {where: {name: xy} for where, xy in scored.items()}


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Run config.methods for all seeds; results.json, the table, CDF and percentile plots."""
    unknown = set(config.methods) - set(METHOD_NAMES)
    if unknown:
        raise ConfigError(
            f"config.methods: unknown {sorted(unknown)}; expected some of {METHOD_NAMES}"
        )
    os.makedirs(workdir, exist_ok=True)
    s = Suite(config, workdir)
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
    found: dict[str, dict[str, np.ndarray]] = {}  # method -> {'test' | 'unlabelled': positions}

    def add(by_scored: dict[str, dict[str, np.ndarray]]) -> None:
        for scored, named in by_scored.items():
            for name, xy in named.items():
                found.setdefault(name, {})[scored] = xy

    if "signature_wknn" in methods:
        add(by_method("signature_wknn", timed("signature_wknn", lambda: run_signature_wknn(s))))
    if methods & {"supervised", "consistency"}:
        model, pretrained = timed("supervised", lambda: run_supervised(s))
        add(by_method("supervised", s.scored_positions(model, pretrained)))
    if "mean_teacher" in methods:
        add(by_method("mean_teacher", timed("mean_teacher", lambda: run_mean_teacher(s))))
    for name, rule in (("fixmatch", "confidence"), ("fixmatch_distance", "distance")):
        if name in methods:
            xy, selection = timed(name, lambda rule=rule: run_fixmatch(s, rule))
            add(by_method(name, xy))
            extra.setdefault("fixmatch_selection", {})[name] = selection
    if "consistency" in methods:
        scored, extra["pseudo_labels"] = timed(
            "consistency", lambda: run_consistency(s, model, pretrained)
        )
        add(scored)
    if "ensemble" in methods:
        scored, extra["ensemble"] = timed("ensemble", lambda: run_ensemble(s))
        add(scored)
    if "sector_heads" in methods:
        add(by_method("sector_heads", timed("sector_heads", lambda: run_sector_heads(s))))
    truth = {"test": s.test_xy, "unlabelled": s.unlabelled_xy}
    tables: dict[str, dict[str, Any]] = {"test": {}, "unlabelled": {}}
    pooled = {}
    for name in REPORTED:
        for scored in ("test", "unlabelled"):
            if scored in found.get(name, {}):
                errors = np.linalg.norm(found[name][scored] - truth[scored][None], axis=-1)
                tables[scored][name] = error_row_over_seeds(errors, s.seeds, PAPER_PERCENTILES)
                if scored == "test":
                    pooled[name] = errors.ravel()
    rows = tables["test"]
    cdf_plot(pooled, os.path.join(workdir, "cdf.png"), title="CSI positioning (all seeds)")
    percentile_bar_plot(
        pooled, os.path.join(workdir, "percentiles.png"), title="error percentiles (all seeds)"
    )
    extra["unlabelled_pool_passes"] = {
        name: passes for name, passes in s.unlabelled_passes().items() if name in methods
    }
    split = s.split_summary()
    sizes = split["split_sizes"]
    title = (
        f"{config.data.path}: labelled {sizes['labelled']} "
        f"({config.data.get('labelled_sampling', 'uneven')}), unlabelled {sizes['unlabelled']}, "
        f"test {sizes['test']}; seeds {list(s.seeds)}; backbone {config.backbone}; "
        f"sector frame {s.geometry.sector_frame}, log power {s.log_power is not None}, "
        f"crop {s.crop_taps} taps; held-out test receivers"
    )
    columns = ["mean", "mean_ci_low", "mean_ci_high", *(f"p{q}" for q in PAPER_PERCENTILES)]
    write_results(
        workdir,
        title,
        config,
        rows,
        columns,
        seeds=list(s.seeds),
        tables=extra_tables(
            tables["unlabelled"],
            columns,
            extra.get("pseudo_labels", []),
            extra.get("fixmatch_selection", {}),
        ),
        train_seconds=seconds,
        **split,
        **extra,
    )
    return rows

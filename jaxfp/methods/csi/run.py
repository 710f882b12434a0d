"""The CSI paper's protocols (`config.method`): `csi.table1` (Table I: each backbone supervised on
the labelled 10%) and `csi.few_labels` (Table II and Fig. 4: the semi-supervised methods, the
ensemble and the sector heads), every seed at once on a `Study`.

What a seed varies: the ray-traced receivers and their positions are one fixed world, so a seed
draws its own held-out test receivers and labelled subset, its batches and noise, and its
initialisation; intervals over seeds are Student-t, and an ordering the paper claims is judged on
the paired difference over seeds. Targets are positions relative to the BS scaled by
`target_scale_m` (a choice: the paper does not say how it normalises); timing advance and AWGN
are drawn inside the jitted step, evaluation uses a fixed key per seed.
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
from jaxfp.methods import program
from jaxfp.methods.csi.budget import one_round_stage3_steps, row_steps
from jaxfp.methods.csi.consistency import run_consistency
from jaxfp.methods.csi.ensemble import run_ensemble
from jaxfp.methods.csi.report import (
    FEW_LABEL_CLAIMS,
    PAIRED_COLUMNS,
    PAIRED_TITLE,
    PAPER_PERCENTILES,
    TABLE1_CLAIMS,
    extra_tables,
    learning_curve_plot,
    learning_curves,
    model_cost,
    paired_rows,
    per_seed_errors,
)
from jaxfp.methods.csi.semi_supervised import MEAN_TEACHERS, run_fixmatch, run_mean_teacher
from jaxfp.methods.csi.study import Study
from jaxfp.methods.csi.supervised import (
    run_sector_heads,
    run_signature_wknn,
    run_supervised,
    run_supervised_budget,
)

METHOD_NAMES = (
    "signature_wknn",
    "supervised",
    "supervised_budget",
    "mean_teacher",
    "mean_teacher_aug",
    "fixmatch",
    "fixmatch_distance",
    "consistency",
    "ensemble",
    "sector_heads",
)
REPORTED = (
    "signature_wknn",
    "supervised",
    "supervised_budget",
    "mean_teacher",
    "mean_teacher_aug",
    "fixmatch",
    "fixmatch_distance",
    "consistency",
    "consistency_iterative",
    "ensemble",
    "ensemble_consensus",
    "sector_heads",
)


def run_table1(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Train every backbone in config.backbones for every seed; Table I plus percentiles."""
    os.makedirs(workdir, exist_ok=True)
    s = Study(config, workdir, with_unlabelled=False)
    rows, pooled, per_seed = {}, {}, {}
    truth = s.truth("test")
    for name in config.backbones:
        print(f"[csi.table1] {name}: training", flush=True)
        start = time.perf_counter()
        model, state = run_supervised(s, backbone=name, stage=name)
        seconds = time.perf_counter() - start
        errors = per_seed_errors(s.positions(model, state, s.parts["test"]), truth)
        rows[name] = {
            **model_cost(model, state, s.sample),
            **error_row_over_seeds(errors, s.seeds, PAPER_PERCENTILES),
            "train_s": seconds,
        }
        pooled[name], per_seed[name] = errors.ravel(), errors.mean(1)
    cdf_plot(pooled, os.path.join(workdir, "cdf.png"), title="CSI positioning, supervised")
    percentile_bar_plot(pooled, os.path.join(workdir, "percentiles.png"), title="error percentiles")
    split = s.split_summary()
    sizes = split["split_sizes"]
    title = (
        f"{config.data.path}: {s.dataset_size} receivers; per seed labelled {sizes['labelled']}, "
        f"test {sizes['test']}; seeds {list(s.seeds)}; {config.train.num_steps} steps each"
    )
    columns = [
        "params_m",
        "gflops",
        "mean",
        "mean_ci_low",
        "mean_ci_high",
        *(f"p{q}" for q in PAPER_PERCENTILES),
        "train_s",
    ]
    paired = paired_rows(per_seed, TABLE1_CLAIMS)
    tables = {PAIRED_TITLE: table(paired, PAIRED_COLUMNS)} if paired else {}
    write_results(workdir, title, config, rows, columns, tables=tables, **split)
    return rows


def run_few_labels(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Run config.methods for all seeds; results.json, the tables, CDF and percentile plots."""
    unknown = set(config.methods) - set(METHOD_NAMES)
    if unknown:
        raise ConfigError(
            f"config.methods: unknown {sorted(unknown)}; expected some of {METHOD_NAMES}"
        )
    os.makedirs(workdir, exist_ok=True)
    steps = row_steps(config)  # checks the budget before anything trains
    s = Study(config, workdir)
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

    def add(by_part: dict[str, dict[str, np.ndarray]]) -> None:
        for part, named in by_part.items():
            for name, xy in named.items():
                found.setdefault(name, {})[part] = xy

    def one(name: str, by_part: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
        return {part: {name: xy} for part, xy in by_part.items()}

    if "signature_wknn" in methods:
        add(one("signature_wknn", timed("signature_wknn", lambda: run_signature_wknn(s))))
    if methods & {"supervised", "consistency"}:
        model, pretrained = timed("supervised", lambda: run_supervised(s))
        add(one("supervised", s.scored_positions(model, pretrained)))
    if "supervised_budget" in methods:
        add(one("supervised_budget", timed("supervised_budget", lambda: run_supervised_budget(s))))
    for name in MEAN_TEACHERS:
        if name in methods:
            add(one(name, timed(name, lambda name=name: run_mean_teacher(s, name))))
    for name in ("fixmatch", "fixmatch_distance"):
        if name in methods:
            xy, selection = timed(name, lambda name=name: run_fixmatch(s, name))
            add(one(name, xy))
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
        add(one("sector_heads", timed("sector_heads", lambda: run_sector_heads(s))))
    tables: dict[str, dict[str, Any]] = {part: {} for part in s.scored}
    pooled, per_seed = {}, {}
    for name in REPORTED:
        for part in s.scored:
            if part in found.get(name, {}):
                errors = per_seed_errors(found[name][part], s.truth(part))
                row = error_row_over_seeds(errors, s.seeds, PAPER_PERCENTILES)
                tables[part][name] = {**row, "steps": steps[name]}
                if part == "test":
                    pooled[name], per_seed[name] = errors.ravel(), errors.mean(1)
    rows = tables["test"]
    cdf_plot(pooled, os.path.join(workdir, "cdf.png"), title="CSI positioning (all seeds)")
    percentile_bar_plot(
        pooled, os.path.join(workdir, "percentiles.png"), title="error percentiles (all seeds)"
    )
    curves = learning_curves(workdir, row_stages(config))
    extra["learning_curves"] = {name: curves[name] for name in REPORTED if name in curves}
    learning_curve_plot(extra["learning_curves"], os.path.join(workdir, "learning_curves.png"))
    extra["unlabelled_pool_passes"] = {
        name: passes for name, passes in s.unlabelled_passes().items() if name in methods
    }
    split = s.split_summary()
    sizes = split["split_sizes"]
    title = (
        f"{config.data.path}: per seed labelled {sizes['labelled']} "
        f"({config.data.get('labelled_sampling', 'uneven')}), unlabelled {sizes['unlabelled']}, "
        f"test {sizes['test']}; seeds {list(s.seeds)} (each its own split); backbone "
        f"{config.backbone}; sector frame {s.geometry.sector_frame}, log power "
        f"{s.log_power is not None}, crop {s.crop_taps} taps; held-out test receivers"
    )
    title += "; steps: gradient steps of all the row's networks"
    columns = [
        "mean",
        "mean_ci_low",
        "mean_ci_high",
        *(f"p{q}" for q in PAPER_PERCENTILES),
        "steps",
    ]
    paired = paired_rows(per_seed, FEW_LABEL_CLAIMS)
    more = {PAIRED_TITLE: table(paired, PAIRED_COLUMNS)} if paired else {}
    more.update(
        extra_tables(
            tables.get("unlabelled", {}),
            columns,
            extra.get("pseudo_labels", []),
            extra.get("fixmatch_selection", {}),
        )
    )
    write_results(
        workdir,
        title,
        config,
        rows,
        columns,
        seeds=list(s.seeds),
        tables=more,
        train_seconds=seconds,
        **split,
        **extra,
    )
    return rows


def row_stages(config: ml_collections.ConfigDict) -> dict[str, list[str]]:
    """Each trained row's stages (workdir names) in training order, for its learning curve."""
    k = config.consistency
    one_round = "one_round_stage3" if one_round_stage3_steps(config) != k.stage3_steps else None
    rounds = [
        f"consistency/round{r}_{part}"
        for r in range(1, k.rounds + 1)
        for part in ("model_a", "model_b", "stage3")
    ]
    single = ("supervised", "supervised_budget", *MEAN_TEACHERS, "fixmatch", "fixmatch_distance")
    return {
        **{name: [name] for name in single},
        "consistency": ["supervised", *rounds[:2], f"consistency/{one_round or 'round1_stage3'}"],
        "consistency_iterative": ["supervised", *rounds],
        "ensemble": [f"ensemble/{g}" for g in sorted(config.ensemble.groups)],
        "sector_heads": ["sector_heads"],
    }


PROGRAMS: dict[str, Callable[[ml_collections.ConfigDict, str], dict[str, Any]]] = {
    "table1": run_table1,
    "few_labels": run_few_labels,
}


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    return program(config.method, PROGRAMS)(config, workdir)

"""The CSI protocols' tables beyond the main one: paired differences over seeds for the orderings
the paper claims, the transductive score, the kept-label diagnostics, FixMatch's selection, and a
model's cost (Table I's parameter and FLOP columns)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from jaxfp.eval import stats
from jaxfp.eval.results import table
from jaxfp.train.state import TrainState

PAPER_PERCENTILES = (50, 67, 80, 90)  # 3GPP TR 38.843, the paper's Fig. 4b

# (A, B): the paper claims A's mean error is below B's. Table I (§IV-B): the ResNets ahead of
# MobileNetV2 ahead of ShuffleNetV2, ResNet34 8.5% below MobileNetV2 and (its text) ahead of the
# deeper ResNets.
TABLE1_CLAIMS = (
    ("mobilenet_v2", "shufflenet_v2"),
    ("resnet18", "mobilenet_v2"),
    ("resnet34", "mobilenet_v2"),
    ("resnet34", "resnet18"),
    ("resnet34", "resnet50"),
    ("resnet34", "resnet101"),
)
# Table II's ordering (ours iterative < ours < FixMatch-distance < FixMatch < Mean Teacher), ours
# against each baseline and the labelled-only control at the same steps, Mean Teacher with our
# augmentation against the paper's, and Fig. 3's ensemble and sector heads against one model at
# the same steps (`budget.row_steps`: every pair here trains equally many steps).
FEW_LABEL_CLAIMS = (
    ("consistency_iterative", "consistency"),
    ("consistency", "fixmatch_distance"),
    ("fixmatch_distance", "fixmatch"),
    ("fixmatch", "mean_teacher"),
    ("consistency", "mean_teacher"),
    ("consistency", "fixmatch"),
    ("consistency", "supervised_budget"),
    ("consistency_iterative", "supervised_budget"),
    ("mean_teacher_aug", "mean_teacher"),
    ("consistency_iterative", "mean_teacher_aug"),
    ("ensemble", "supervised_budget"),
    ("ensemble_consensus", "ensemble"),
    ("sector_heads", "supervised_budget"),
)
PAIRED_COLUMNS = ["mean_diff_m", "mean_diff_m_ci_low", "mean_diff_m_ci_high", "verdict"]
PAIRED_TITLE = "paired differences over seeds (A - B of the per-seed mean errors, m)"


def paired_rows(
    per_seed_mean: Mapping[str, Sequence[float]], claims: Sequence[tuple[str, str]]
) -> dict[str, dict[str, Any]]:
    """One paired-difference row, named "A - B", per claim whose two rows both ran."""
    return stats.paired_rows(per_seed_mean, claims, "mean_diff_m")


def extra_tables(
    transductive: dict[str, Any],
    columns: list[str],
    rounds: list[dict[str, Any]],
    fixmatch_selection: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The transductive table (each seed's unlabelled part scored), the kept-label report per
    round and what FixMatch's rules keep at the end of training."""
    out = (
        {"transductive: the unlabelled pool": table(transductive, columns)} if transductive else {}
    )
    if rounds:
        out["stage 2 per round (errors against the truth: diagnostics)"] = table(
            {f"round {r['round']}": r for r in rounds},
            [
                "interpolation_a_error_m",
                "interpolation_b_error_m",
                "model_a_error_m",
                "model_b_error_m",
                "kept_this_round",
                "pseudo_labelled",
                "kept_label_error_m",
                "stage1_error_on_kept_m",
            ],
        )
        report = {
            f"round {r['round']}, r = {row['radius_m']:g} m": row
            for r in rounds
            for row in r["by_radius"]
        }
        out["kept labels (models A vs B, rows not yet kept; errors against the truth)"] = table(
            report, ["kept", "kept_share", "label_error_m", "model_error_m"]
        )
    if fixmatch_selection:
        out["FixMatch at the end of training: what its rule keeps of the unlabelled pool"] = table(
            fixmatch_selection, ["kept_share", "kept_error_m", "rejected_error_m", "all_error_m"]
        )
    return out


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


def per_seed_errors(found: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(seeds, rows) distances in metres between positions and each seed's truth."""
    return np.linalg.norm(found - truth, axis=-1)


def learning_curves(
    workdir: str, stages_by_row: Mapping[str, Sequence[str]], points: int = 60
) -> dict[str, dict[str, list[float]]]:
    """Per row, the training batches' labelled distance (m, `distance_m` of each stage's
    metrics.jsonl) against the row's cumulative step, its stages in order; at most `points` per
    stage (evenly thinned). Rows with a stage that has no metrics are left out."""
    curves: dict[str, dict[str, list[float]]] = {}
    for row, stages in stages_by_row.items():
        steps: list[float] = []
        distance: list[float] = []
        offset = 0
        for stage in stages:
            path = os.path.join(workdir, stage, "metrics.jsonl")
            if not os.path.exists(path):
                break
            with open(path) as f:
                logged = [json.loads(line) for line in f if line.strip()]
            logged = [m for m in logged if "distance_m" in m]
            if not logged:
                break
            keep = np.unique(np.linspace(0, len(logged) - 1, min(points, len(logged))).astype(int))
            steps += [offset + logged[i]["step"] for i in keep]
            distance += [float(logged[i]["distance_m"]) for i in keep]
            offset += int(logged[-1]["step"])
        else:
            curves[row] = {"step": steps, "distance_m": distance}
    return curves


def learning_curve_plot(curves: Mapping[str, Mapping[str, list[float]]], path: str) -> str:
    """One line per row: training distance against cumulative steps (log scale)."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for row, curve in curves.items():
        ax.plot(curve["step"], curve["distance_m"], label=row, linewidth=1)
    ax.set(xlabel="gradient steps (the row's stages in order)", ylabel="training distance (m)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path

"""The CSI protocols' tables beyond the main one: paired differences over seeds for the orderings
the paper claims, the transductive score, the kept-label diagnostics, FixMatch's selection, and a
model's cost (Table I's parameter and FLOP columns)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

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
# against each baseline and stage 1, and Fig. 3's ensemble and sector heads against one model.
FEW_LABEL_CLAIMS = (
    ("consistency_iterative", "consistency"),
    ("consistency", "fixmatch_distance"),
    ("fixmatch_distance", "fixmatch"),
    ("fixmatch", "mean_teacher"),
    ("consistency", "mean_teacher"),
    ("consistency", "fixmatch"),
    ("consistency", "supervised"),
    ("ensemble", "supervised"),
    ("ensemble_consensus", "ensemble"),
    ("sector_heads", "supervised"),
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

"""The semi-supervised framework with consistency (CSI paper §III-A, Fig. 2): stages 2 and 3 from
the stage-1 model, one round ('consistency') and iterated ('consistency_iterative').

Each round labels the unlabelled rows not yet kept from two independent sources
(`pseudo_labels`): A, CSI-signature interpolation over the anchors (labelled + kept rows);
B, network B (config.consistency.network_b, trained on the labelled rows, then fine-tuned on the
anchors each round). Rows where they agree within `agreement_radius_m` are kept with their mean;
stage 3 fine-tunes the current model on labelled + kept rows — unless the oracle gate
(`consistency.gate="oracle"`, ours) finds the kept labels no better than the stage-1 model on
those rows against the truth; `gate="none"` (the paper) always runs it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jaxfp.config import ConfigError
from jaxfp.methods.csi import losses, pseudo_labels
from jaxfp.methods.csi.study import Study
from jaxfp.methods.csi.supervised import run_supervised
from jaxfp.train.state import TrainState
from jaxfp.train.steps import make_train_step

GATES = ("none", "oracle")


def run_consistency(
    s: Study, model, pretrained: TrainState
) -> tuple[dict[str, dict[str, np.ndarray]], list[dict[str, Any]]]:
    """Stages 2-3 for config.consistency.rounds rounds from the stage-1 model `pretrained`.

    Returns {'test' | 'unlabelled': {'consistency': after round 1, 'consistency_iterative': after
    the last round}} positions, and per-round statistics with the kept-label report (errors
    against the truth: diagnostics, except under the oracle gate).
    """
    c, k = s.config, s.config.consistency
    if k.gate not in GATES:
        raise ConfigError(f"consistency.gate: expected one of {GATES}, got {k.gate!r}")
    tx = s.optimizer(c.finetune.learning_rate, c.finetune.num_steps)
    labelled, unlabelled = s.parts["labelled"], s.parts["unlabelled"]
    table = s.table
    truth = s.truth("unlabelled")  # (seeds, n_u, 2): the report and the oracle gate only
    base_targets, base_weights, _ = s.labelled_targets()
    steps: dict[int, Any] = {}  # one compiled step per network, shared by its fine-tunes
    fitted: dict[int, list[np.ndarray]] = {}  # each network's last training rows, per seed
    stage1_u = s.positions(model, pretrained, unlabelled)
    pseudo = np.full(truth.shape, np.nan)  # kept labels so far, per seed
    model_b, state_b = run_supervised(s, k.network_b, stage="consistency/network_b")
    current, previous, previous_b = pretrained, "supervised", "consistency/network_b"
    positions: dict[str, dict[str, np.ndarray]] = {part: {} for part in s.scored}
    stats: list[dict[str, Any]] = []

    def finetune(name: str, net, init: TrainState, labels: np.ndarray, upstream: str):
        targets, weights = base_targets.copy(), base_weights.copy()
        have = np.isfinite(labels).all(-1)
        pools = []
        for m in range(s.n):
            kept_rows = unlabelled[m][have[m]]
            targets[m, kept_rows] = labels[m][have[m]]
            weights[m, kept_rows] = k.pseudo_weight
            pools.append(np.concatenate([labelled[m], kept_rows]))
        fitted[id(net)] = pools
        if id(net) not in steps:
            loss = losses.make_supervised_loss(net, s.prep, s.geometry)
            steps[id(net)] = make_train_step(loss, jit=False)
        return s.train(
            name,
            s.finetune_from(init, tx),
            steps[id(net)],
            c.finetune.num_steps,
            targets,
            weights,
            pools,
            sections=("consistency", "finetune"),
            upstream=upstream,
        )

    fitted_b = list(labelled)  # network B's training rows (table rows), per seed
    for r in range(1, k.rounds + 1):
        have = np.isfinite(pseudo).all(-1)
        open_rows = ~have  # rows not yet kept: the ones this round may label
        labels_a = np.full(truth.shape, np.nan)  # kept rows are not labelled again
        for m in range(s.n):
            signature = s.signatures(m)
            anchors = np.concatenate([labelled[m], unlabelled[m][have[m]]])
            anchor_xy = np.concatenate([table.xy[labelled[m]], pseudo[m][have[m]]])
            scored = unlabelled[m][open_rows[m]]
            where = f"consistency round {r}, seed {s.seeds[m]}"
            pseudo_labels.assert_cross_fitted(anchors, scored, f"{where}, source A")
            pseudo_labels.assert_cross_fitted(fitted_b[m], scored, f"{where}, source B")
            labels_a[m][open_rows[m]] = pseudo_labels.profile_labels(
                signature[scored],
                table.sector[scored],
                signature[anchors],
                table.sector[anchors],
                anchor_xy,
                k.k,
            )
        labels_b = np.where(open_rows[..., None], s.positions(model_b, state_b, unlabelled), np.nan)
        reports = [
            pseudo_labels.kept_label_report(
                labels_a[m][open_rows[m]],
                labels_b[m][open_rows[m]],
                truth[m][open_rows[m]],
                stage1_u[m][open_rows[m]],
                k.report_radii_m,
            )
            for m in range(s.n)
        ]
        kept, agreed = pseudo_labels.agreeing_labels(labels_a, labels_b, k.agreement_radius_m)
        kept &= open_rows
        pseudo[kept] = agreed[kept]
        have = np.isfinite(pseudo).all(-1)
        label_error = np.linalg.norm(pseudo - truth, axis=-1)
        stage1_error = np.linalg.norm(stage1_u - truth, axis=-1)
        kept_label_error = float(label_error[have].mean()) if have.any() else float("nan")
        kept_stage1_error = float(stage1_error[have].mean()) if have.any() else float("nan")
        passes = bool(have.any()) and kept_label_error < kept_stage1_error
        run_stage3 = k.gate == "none" or passes
        stats.append(
            {
                "round": r,
                "source_a_error_m": mean_error(labels_a[open_rows], truth[open_rows]),
                "source_b_error_m": mean_error(labels_b[open_rows], truth[open_rows]),
                "stage1_error_m": float(stage1_error.mean()),
                "kept_this_round": float(kept.mean()),
                "pseudo_labelled": float(have.mean()),
                "kept_label_error_m": kept_label_error,
                "stage1_error_on_kept_m": kept_stage1_error,
                "stage3": "trained" if run_stage3 else "skipped (kept labels no better)",
                "by_radius": mean_reports(reports),
            }
        )
        print(
            f"[csi] consistency round {r}: A {stats[-1]['source_a_error_m']:.2f} m, "
            f"B {stats[-1]['source_b_error_m']:.2f} m, kept {have.mean():.1%} at "
            f"{kept_label_error:.2f} m (stage 1 there {kept_stage1_error:.2f} m); stage 3 "
            f"{stats[-1]['stage3']}",
            flush=True,
        )
        if run_stage3:
            name = f"consistency/round{r}_stage3"
            current = finetune(name, model, current, pseudo, previous)
            previous = name
        if r < k.rounds:  # network B learns this round's kept labels for the next round
            name_b = f"consistency/round{r + 1}_network_b"
            state_b = finetune(name_b, model_b, state_b, pseudo, previous_b)
            fitted_b, previous_b = fitted[id(model_b)], name_b
        for part, xy in s.scored_positions(model, current).items():
            if r == 1:
                positions[part]["consistency"] = xy
            positions[part]["consistency_iterative"] = xy
    return positions, stats


def mean_error(xy: np.ndarray, truth: np.ndarray) -> float:
    """Mean distance in metres; NaN without rows (a round with nothing left to label)."""
    return float(np.linalg.norm(xy - truth, axis=-1).mean()) if len(xy) else float("nan")


def mean_reports(reports: list[list[dict[str, float]]]) -> list[dict[str, float]]:
    """The seeds' kept-label reports averaged field by field (NaN-aware), radius by radius."""
    out = []
    for rows in zip(*reports, strict=True):
        merged: dict[str, float] = {}
        for key in rows[0]:
            values = np.asarray([row[key] for row in rows], float)
            merged[key] = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
        out.append(merged)
    return out

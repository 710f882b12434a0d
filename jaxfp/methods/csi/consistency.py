"""The semi-supervised framework with consistency (CSI paper §III-A, Fig. 2): stages 2 and 3 from
the stage-1 model, one round ('consistency') and iterated ('consistency_iterative').

Stage 2 of a round: two interpolations (`pseudo_labels`: signature WkNN A and aligned-profile
WkNN B) label every unlabelled row not yet kept from the anchors (labelled + kept rows), giving
pseudo datasets A and B over the whole pool (kept rows carry their kept labels in both); the
current model is fine-tuned on each (models A and B: same architecture, same start, fresh
optimisers); rows not yet kept where models A and B agree within `agreement_radius_m` are kept
with the mean of their positions. Stage 3 fine-tunes the current model on labelled + kept rows.
Choices where the paper is silent, one line each (config in brackets):

- Pseudo datasets include the labelled rows with their true positions (the anchors).
- Pseudo rows weigh `pseudo_weight` against 1 for labelled rows in every fine-tune.
- Round r > 1 starts models A, B and stage 3 from round r - 1's stage-3 model; rows kept in an
  earlier round stay kept and are not relabelled (`rounds`).
- The one-round row's stage 3 is as long as the budget leaves (`budget.one_round_stage3_steps`),
  so it and the iterative row take the same steps.

Nothing here reads the positions of unlabelled rows except `round_diagnostics`, whose numbers go
to the results and decide nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jaxfp.methods.csi import losses, pseudo_labels
from jaxfp.methods.csi.budget import one_round_stage3_steps
from jaxfp.methods.csi.study import Study
from jaxfp.train.state import TrainState
from jaxfp.train.steps import make_train_step

INTERPOLATIONS = {"a": "profile", "b": "aligned"}  # pseudo dataset -> signature kind


def interpolated_labels(s: Study, pseudo: np.ndarray, kind: str, where: str) -> np.ndarray:
    """(seeds, unlabelled rows, 2): every unlabelled row's label in one pseudo dataset — kept rows
    their kept label, the others the `kind` signature's WkNN over the anchors (labelled + kept)."""
    k = s.config.consistency
    labelled, unlabelled, table = s.parts["labelled"], s.parts["unlabelled"], s.table
    have = np.isfinite(pseudo).all(-1)
    out = pseudo.copy()
    for m in range(s.n):
        signature = s.signatures(m, kind)
        anchors = np.concatenate([labelled[m], unlabelled[m][have[m]]])
        anchor_xy = np.concatenate([table.xy[labelled[m]], pseudo[m][have[m]]])
        scored = unlabelled[m][~have[m]]
        pseudo_labels.assert_cross_fitted(anchors, scored, f"{where}, seed {s.seeds[m]}")
        out[m][~have[m]] = pseudo_labels.profile_labels(
            signature[scored],
            table.sector[scored],
            signature[anchors],
            table.sector[anchors],
            anchor_xy,
            k.k,
        )
    return out


def run_consistency(
    s: Study, model, pretrained: TrainState
) -> tuple[dict[str, dict[str, np.ndarray]], list[dict[str, Any]]]:
    """Stages 2-3 for config.consistency.rounds rounds from the stage-1 model `pretrained`.

    Returns {'test' | 'unlabelled': {'consistency', 'consistency_iterative'}} positions and per
    round the diagnostics of `round_diagnostics`.
    """
    c, k = s.config, s.config.consistency
    labelled, unlabelled = s.parts["labelled"], s.parts["unlabelled"]
    base_targets, base_weights, _ = s.labelled_targets()
    step = make_train_step(losses.make_supervised_loss(model, s.prep, s.geometry), jit=False)
    stage1_u = s.positions(model, pretrained, unlabelled)
    pseudo = np.full((s.n, unlabelled.shape[1], 2), np.nan)  # kept labels so far, per seed

    def finetune(name: str, init: TrainState, labels: np.ndarray, steps: int, upstream: str):
        """`init` fine-tuned for `steps` on the labelled rows + the unlabelled rows with a label."""
        targets, weights = base_targets.copy(), base_weights.copy()
        have = np.isfinite(labels).all(-1)
        pools = []
        for m in range(s.n):
            rows = unlabelled[m][have[m]]
            targets[m, rows] = labels[m][have[m]]
            weights[m, rows] = k.pseudo_weight
            pools.append(np.concatenate([labelled[m], rows]))
        tx = s.optimizer(c.finetune.learning_rate, steps)
        return s.train(
            f"consistency/{name}",
            s.finetune_from(init, tx),
            step,
            steps,
            targets,
            weights,
            pools,
            sections=("consistency", "finetune"),
            upstream=upstream,
        )

    positions: dict[str, dict[str, np.ndarray]] = {part: {} for part in s.scored}
    stats: list[dict[str, Any]] = []
    current, upstream = pretrained, "supervised"
    for r in range(1, k.rounds + 1):
        open_rows = ~np.isfinite(pseudo).all(-1)  # the rows this round may keep
        labels, models = {}, {}
        for name, kind in INTERPOLATIONS.items():
            where = f"consistency round {r}, interpolation {name.upper()}"
            labels[name] = interpolated_labels(s, pseudo, kind, where)
            state = finetune(
                f"round{r}_model_{name}", current, labels[name], k.finetune_steps, upstream
            )
            models[name] = s.positions(model, state, unlabelled)
        kept, agreed = pseudo_labels.agreeing_labels(models["a"], models["b"], k.agreement_radius_m)
        kept &= open_rows
        pseudo[kept] = agreed[kept]
        stats.append(round_diagnostics(s, r, open_rows, kept, pseudo, labels, models, stage1_u))
        print(
            f"[csi] consistency round {r}: kept {kept.mean():.1%} of the pool this round, "
            f"{np.isfinite(pseudo).all(-1).mean():.1%} in all",
            flush=True,
        )
        name = f"round{r}_stage3"
        if r == 1 and one_round_stage3_steps(c) != k.stage3_steps:
            one = finetune(
                "one_round_stage3", pretrained, pseudo, one_round_stage3_steps(c), upstream
            )
            for part, xy in s.scored_positions(model, one).items():
                positions[part]["consistency"] = xy
        current = finetune(name, current, pseudo, k.stage3_steps, upstream)
        upstream = f"consistency/{name}"
        for part, xy in s.scored_positions(model, current).items():
            positions[part].setdefault("consistency", xy)  # one round only: the same stage
            positions[part]["consistency_iterative"] = xy
    return positions, stats


def round_diagnostics(
    s: Study,
    r: int,
    open_rows: np.ndarray,
    kept: np.ndarray,
    pseudo: np.ndarray,
    labels: dict[str, np.ndarray],
    models: dict[str, np.ndarray],
    stage1_u: np.ndarray,
) -> dict[str, Any]:
    """One round's report against the unlabelled rows' true positions (diagnostics only): the
    interpolations' and fine-tuned models' errors on the rows open this round, what is kept and
    how good it is, and the kept-label report per radius (`consistency.report_radii_m`)."""
    truth = s.truth("unlabelled")
    have = np.isfinite(pseudo).all(-1)
    label_error = np.linalg.norm(pseudo - truth, axis=-1)
    stage1_error = np.linalg.norm(stage1_u - truth, axis=-1)
    reports = [
        pseudo_labels.kept_label_report(
            models["a"][m][open_rows[m]],
            models["b"][m][open_rows[m]],
            truth[m][open_rows[m]],
            stage1_u[m][open_rows[m]],
            s.config.consistency.report_radii_m,
        )
        for m in range(s.n)
    ]
    return {
        "round": r,
        "interpolation_a_error_m": mean_error(labels["a"][open_rows], truth[open_rows]),
        "interpolation_b_error_m": mean_error(labels["b"][open_rows], truth[open_rows]),
        "model_a_error_m": mean_error(models["a"][open_rows], truth[open_rows]),
        "model_b_error_m": mean_error(models["b"][open_rows], truth[open_rows]),
        "stage1_error_m": float(stage1_error.mean()),
        "kept_this_round": float(kept.mean()),
        "pseudo_labelled": float(have.mean()),
        "kept_label_error_m": float(label_error[have].mean()) if have.any() else float("nan"),
        "stage1_error_on_kept_m": float(stage1_error[have].mean()) if have.any() else float("nan"),
        "by_radius": mean_reports(reports),
    }


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

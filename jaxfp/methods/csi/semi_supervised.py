"""The semi-supervised baselines of Table II: Mean Teacher (the paper's, without augmentation, and
ours with independent TA and noise draws) and FixMatch (the confidence rule and the paper's
distance threshold), each trained from scratch on each seed's labelled rows plus batches of its
unlabelled rows for the budget's steps (`budget.row_steps`; see `losses` for the losses and the
choices behind them).

FixMatch's grid cells cover the surveyed region of the data set's header (where datagen wrote it;
else the extent of every receiver place, a property of the survey grid), so every seed has the
same classes whichever seeds share the stack.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jaxfp.common.geometry import Cells
from jaxfp.methods.csi import losses
from jaxfp.methods.csi.budget import row_steps
from jaxfp.methods.csi.study import Study
from jaxfp.train.state import TrainState
from jaxfp.train.steps import make_train_step

FIXMATCH_RULES = {"fixmatch": "confidence", "fixmatch_distance": "distance"}
# Mean Teacher rows -> whether student and teacher see independent TA and noise draws.
MEAN_TEACHERS = {"mean_teacher": False, "mean_teacher_aug": True}


def run_mean_teacher(s: Study, name: str = "mean_teacher") -> dict[str, np.ndarray]:
    """Student + EMA teacher (`name` in MEAN_TEACHERS); the teacher is the model reported."""
    c = s.config
    model = s.model(c.backbone, c.width)
    steps = row_steps(c)[name]
    tx = s.optimizer(c.optimizer.learning_rate, steps)
    rampup = int(c.mean_teacher.rampup_fraction * steps)
    loss = losses.make_mean_teacher_loss(
        model, s.prep, s.geometry, c.mean_teacher.weight, rampup, MEAN_TEACHERS[name]
    )
    step = losses.make_mean_teacher_step(loss, c.mean_teacher.ema_decay)
    state = s.train(
        name,
        s.initial(model, tx, teacher=True),
        step,
        steps,
        *s.labelled_targets(),
        sections=("mean_teacher",),
        unlabelled=True,
    )
    teacher = state.replace(params=state.teacher_params, batch_stats=state.teacher_batch_stats)
    return s.scored_positions(model, teacher)


def fixmatch_cells(s: Study) -> Cells:
    """FixMatch's classes: `fixmatch.cell_m` cells over the surveyed region (the header's
    x_min, x_max, y_min, y_max; without one, the extent of every receiver place)."""
    if s.region is not None:
        x_min, x_max, y_min, y_max = (float(v) for v in s.region)
        corners = np.array([[x_min, y_min], [x_max, y_max]])
        return Cells.covering(corners, s.config.fixmatch.cell_m)
    return Cells.covering(s.table.xy, s.config.fixmatch.cell_m)


def run_fixmatch(s: Study, name: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """FixMatch `name` ('fixmatch': confidence rule; 'fixmatch_distance'): (scored positions,
    `fixmatch_selection` of the trained model)."""
    rule = FIXMATCH_RULES[name]
    c, f = s.config, s.config.fixmatch
    cells = fixmatch_cells(s)
    model = s.model(c.backbone, c.width, cells=cells.count if rule == "confidence" else 0)
    steps = row_steps(c)[name]
    tx = s.optimizer(c.optimizer.learning_rate, steps)
    unit = f.get("position_unit_m", 0.0) or f.cell_m
    loss = losses.make_fixmatch_loss(
        model,
        s.prep,
        s.strong_prep,
        s.geometry,
        rule,
        f.weight,
        f.threshold,
        f.distance_threshold_m,
        cells,
        unit,
    )
    state = s.train(
        name,
        s.initial(model, tx),
        make_train_step(loss, jit=False),
        steps,
        *s.labelled_targets(),
        sections=("fixmatch",),
        unlabelled=True,
    )
    return s.scored_positions(model, state), fixmatch_selection(s, model, state, rule)


def fixmatch_selection(s: Study, model, state: TrainState, rule: str) -> dict[str, Any]:
    """What FixMatch's `rule` keeps of each seed's whole unlabelled part at the end of training —
    weak views drawn as the loss draws them (random TA and noise, running statistics) — and the
    true error of the kept and of the rejected pseudo-positions. The truth is read here only,
    never by the training. Per seed, and their mean."""
    f, rows = s.config.fixmatch, s.parts["unlabelled"]
    first = s.predict(model, state, rows, view=1)
    weak = first["xy"][:, :, 0]  # the loss's pseudo target: head 0 of the weak view
    if rule == "confidence":
        keep = first["cell_confidence"] >= f.threshold
        pseudo = weak
    else:
        second = s.predict(model, state, rows, view=2)["xy"][:, :, 0]
        keep = np.linalg.norm(weak - second, axis=-1) < f.distance_threshold_m
        pseudo = 0.5 * (weak + second)
    error = np.linalg.norm(pseudo - s.truth("unlabelled"), axis=-1)  # (seeds, rows)

    def mean_where(mask: np.ndarray) -> list[float]:  # nan for a seed that kept none / all
        return [
            float(e[m].mean()) if m.any() else float("nan")
            for e, m in zip(error, mask, strict=True)
        ]

    per_seed = {
        "kept_share": keep.mean(1).tolist(),
        "kept_error_m": mean_where(keep),
        "rejected_error_m": mean_where(~keep),
        "all_error_m": error.mean(1).tolist(),
    }
    out: dict[str, Any] = {
        k: float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")
        for k, v in per_seed.items()
    }
    out["per_seed"] = per_seed
    return out

"""The CSI paper's methods on a `Suite`: supervised (stage 1), Mean Teacher, FixMatch (confidence
and distance rules), the consistency framework (stages 2-3, iterated), the ensemble (groups of
members, weighted average and consensus) and the sector heads. Each returns test positions
(members, test rows, 2) in metres; every training stage is named, and its keys come from the name.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from jaxfp.common.geometry import Cells
from jaxfp.methods.csi import losses, pseudo_labels
from jaxfp.methods.csi.ensemble import consensus, inverse_error_weights, weighted_average
from jaxfp.methods.csi.suite import Suite
from jaxfp.train.keys import named_seed
from jaxfp.train.state import TrainState
from jaxfp.train.steps import make_train_step


def run_supervised(
    s: Suite, backbone: str | None = None, stage: str = "supervised"
) -> tuple[Any, TrainState]:
    """Stage 1 / the supervised baseline: `backbone` (default config.backbone) on the labelled rows."""
    c = s.config
    model = s.model(backbone or c.backbone, c.width)
    state = supervised_stage(
        s, stage, model, c.train.learning_rate, *s.labelled_targets(), upstream=backbone
    )
    return model, state


def supervised_stage(
    s: Suite,
    stage: str,
    model,
    learning_rate: float,
    targets: np.ndarray,
    weights: np.ndarray,
    pools: list[np.ndarray],
    **train_options: Any,
) -> TrainState:
    """A fresh `model` trained with the supervised loss on the (pooled) rows, as stage `stage`."""
    steps = s.config.train.num_steps
    loss = losses.make_supervised_loss(model, s.prep, s.geometry)
    state = s.new_states(model, s.optimizer(learning_rate, steps), stage)
    step = make_train_step(loss, jit=False)
    return s.train(stage, state, step, steps, targets, weights, pools, **train_options)


def run_mean_teacher(s: Suite) -> np.ndarray:
    c = s.config
    model = s.model(c.backbone, c.width)
    tx = s.optimizer(c.train.learning_rate, c.train.num_steps)
    rampup = int(c.mean_teacher.rampup_fraction * c.train.num_steps)
    loss = losses.make_mean_teacher_loss(model, s.prep, s.geometry, c.mean_teacher.weight, rampup)
    step = losses.make_mean_teacher_step(loss, c.mean_teacher.ema_decay)
    state = s.new_states(model, tx, "mean_teacher", teacher=True)
    state = s.train(
        "mean_teacher",
        state,
        step,
        c.train.num_steps,
        *s.labelled_targets(),
        sections=("mean_teacher",),
        unlabelled=True,
    )
    # The teacher is the model Mean Teacher reports.
    teacher = state.replace(params=state.teacher_params, batch_stats=state.teacher_batch_stats)
    return s.test_positions(model, teacher)


def run_fixmatch(s: Suite, rule: str) -> np.ndarray:
    c, f = s.config, s.config.fixmatch
    cells = Cells.covering(s.train_xy[: s.n_labelled], f.cell_m)
    model = s.model(c.backbone, c.width, cells=cells.count if rule == "confidence" else 0)
    tx = s.optimizer(c.train.learning_rate, c.train.num_steps)
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
    )
    name = "fixmatch" if rule == "confidence" else "fixmatch_distance"
    state = s.train(
        name,
        s.new_states(model, tx, name),
        make_train_step(loss, jit=False),
        c.train.num_steps,
        *s.labelled_targets(),
        sections=("fixmatch",),
        unlabelled=True,
    )
    return s.test_positions(model, state)


def run_consistency(
    s: Suite, model, pretrained: TrainState
) -> tuple[dict[str, np.ndarray], list[dict[str, float]]]:
    """Stages 2-3 for config.consistency.rounds rounds from the stage-1 model.

    Returns test positions after round 1 ('consistency') and after the last round
    ('consistency_iterative'), and per-round pseudo-label statistics.
    """
    c, k = s.config, s.config.consistency
    tx = s.optimizer(c.finetune.learning_rate, c.finetune.num_steps)
    loss = losses.make_supervised_loss(model, s.prep, s.geometry)
    step = make_train_step(loss, jit=False)
    n_l, rows = s.n_labelled, len(s.train_csi)
    xy_l = s.train_xy[:n_l].astype(np.float64)
    true_u = s.train_xy[n_l:].astype(np.float64)
    base_targets, base_weights, _ = s.labelled_targets()
    pseudo = np.full((s.n, rows - n_l, 2), np.nan)  # kept labels so far, per member
    current, positions, stats = pretrained, {}, []
    previous = "supervised"

    def finetune(name: str, labels: np.ndarray) -> TrainState:
        targets, weights = base_targets.copy(), base_weights.copy()
        have = np.isfinite(labels).all(-1)
        targets[:, n_l:][have] = labels[have]
        weights[:, n_l:][have] = k.pseudo_weight
        pools = [np.concatenate([np.arange(n_l), n_l + np.flatnonzero(h)]) for h in have]
        state = s.new_states(model, tx, name, init_from=current)
        return s.train(
            name,
            state,
            step,
            c.finetune.num_steps,
            targets,
            weights,
            pools,
            sections=("consistency", "finetune"),
            upstream=previous,
        )

    for r in range(1, k.rounds + 1):
        out = s.predict(model, current, s.train_csi)
        xy_all, features = out["xy"][:, :, 0], out["features"]
        labels_a = np.stack(
            [
                pseudo_labels.feature_knn_labels(features[m, n_l:], features[m, :n_l], xy_l, k.k)
                for m in range(s.n)
            ]
        )
        labels_b = np.stack(
            [
                pseudo_labels.spatial_residual_labels(xy_all[m, n_l:], xy_all[m, :n_l], xy_l, k.k)
                for m in range(s.n)
            ]
        )
        model_a = finetune(f"consistency/round{r}_a", labels_a)
        model_b = finetune(f"consistency/round{r}_b", labels_b)
        position_a = s.predict(model, model_a, s.train_csi[n_l:])["xy"][:, :, 0]
        position_b = s.predict(model, model_b, s.train_csi[n_l:])["xy"][:, :, 0]
        kept, agreed = pseudo_labels.agreeing_labels(position_a, position_b, k.agreement_radius_m)
        pseudo[kept] = agreed[kept]
        have = np.isfinite(pseudo).all(-1)
        stats.append(
            {
                "round": r,
                "interpolation_a_error_m": float(np.linalg.norm(labels_a - true_u, axis=-1).mean()),
                "interpolation_b_error_m": float(np.linalg.norm(labels_b - true_u, axis=-1).mean()),
                "kept_this_round": float(kept.mean()),
                "pseudo_labelled": float(have.mean()),
                "kept_label_error_m": float(
                    np.linalg.norm(agreed - true_u, axis=-1)[kept].mean() if kept.any() else np.nan
                ),
            }
        )
        current = finetune(f"consistency/round{r}_stage3", pseudo)
        previous = f"consistency/round{r}_stage3"
        xy = s.test_positions(model, current)
        if r == 1:
            positions["consistency"] = xy
        positions["consistency_iterative"] = xy
    return positions, stats


def run_ensemble(s: Suite) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Each group (backbone, learning rate, width) trains all seeds at once on bootstrap samples of
    the labelled rows; out-of-bag errors weight the members; seed m's ensemble = member m of
    every group."""
    c, e = s.config, s.config.ensemble
    targets, weights, _ = s.labelled_targets()
    n_l = s.n_labelled
    predictions, oob_errors = [], []
    for name, group in sorted(e.groups.items()):
        stage = f"ensemble/{name}"
        rng = [np.random.default_rng(named_seed(c.seed, stage, "bootstrap", m)) for m in range(s.n)]
        pools = [r.choice(n_l, n_l, replace=True) if e.bootstrap else np.arange(n_l) for r in rng]
        model = s.model(group.backbone, group.get("width", 0))
        state = supervised_stage(
            s, stage, model, group.learning_rate, targets, weights, pools, sections=("ensemble",)
        )
        predictions.append(s.test_positions(model, state))
        labelled_xy = s.predict(model, state, s.train_csi[:n_l])["xy"][:, :, 0]
        errors = np.linalg.norm(labelled_xy - s.train_xy[:n_l], axis=-1)
        oob = []
        for m in range(s.n):
            out_of_bag = np.setdiff1d(np.arange(n_l), pools[m])
            oob.append(errors[m, out_of_bag].mean() if len(out_of_bag) else errors[m].mean())
        oob_errors.append(oob)
    members = np.stack(predictions, 1)  # (seeds, groups, test, 2)
    oob = np.asarray(oob_errors).T  # (seeds, groups)
    averaged, agreed, agreeing = [], [], []
    for m in range(s.n):
        w = inverse_error_weights(jnp.asarray(oob[m]))
        averaged.append(np.asarray(weighted_average(jnp.asarray(members[m]), w)))
        estimate, count = consensus(jnp.asarray(members[m]), e.consensus_radius_m, w)
        agreed.append(np.asarray(estimate))
        agreeing.append(float(np.asarray(count).mean()))
    info = {
        "groups": sorted(e.groups.keys()),
        "out_of_bag_error_m": oob.tolist(),
        "mean_agreeing_members": agreeing,
    }
    return {"ensemble": np.stack(averaged), "ensemble_consensus": np.stack(agreed)}, info


def run_sector_heads(s: Suite) -> np.ndarray:
    c, h = s.config, s.config.sector
    model = s.model(c.backbone, c.width, heads=len(s.geometry.azimuths_rad))
    tx = s.optimizer(c.train.learning_rate, c.train.num_steps)
    loss = losses.make_supervised_loss(
        model, s.prep, s.geometry, h.rotated_weight, h.consistency_weight
    )
    state = s.train(
        "sector_heads",
        s.new_states(model, tx, "sector_heads"),
        make_train_step(loss, jit=False),
        c.train.num_steps,
        *s.labelled_targets(),
        sections=("sector",),
        unlabelled=h.consistency_weight > 0,
    )
    return s.test_positions(model, state)

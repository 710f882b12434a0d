"""The CSI paper's methods on a `Suite`: supervised (stage 1), Mean Teacher, FixMatch (confidence
and distance rules), the consistency framework (stages 2-3, iterated), the ensemble (groups of
members, weighted average and consensus) and the sector heads. Each returns positions in metres,
{'test': (members, test rows, 2), 'unlabelled': (members, unlabelled rows, 2)} (the held-out and
the transductive score); every training stage is named, and its keys come from the name.
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


def run_signature_wknn(s: Suite) -> dict[str, np.ndarray]:
    """Source A on its own, a baseline without training: each receiver's position interpolated
    over the labelled receivers of its sector in the TA-invariant CSI signature (the consistency
    section's k and signature bins). The same for every seed."""
    k, n_l = s.config.consistency, s.n_labelled
    anchors = s.signatures(s.train_csi[:n_l], k.signature_bins)
    scored = {"test": (s.test_csi, s.test_sector)}
    if len(s.train_csi) > n_l:
        scored["unlabelled"] = (s.train_csi[n_l:], s.train_sector[n_l:])
    out = {}
    for name, (csi, sector) in scored.items():
        xy = pseudo_labels.profile_labels(
            s.signatures(csi, k.signature_bins),
            sector,
            anchors,
            s.train_sector[:n_l],
            s.train_xy[:n_l].astype(np.float64),
            k.k,
        )
        out[name] = np.broadcast_to(xy, (s.n, *xy.shape))
    return out


def run_mean_teacher(s: Suite) -> dict[str, np.ndarray]:
    c = s.config
    model = s.model(c.backbone, c.width)
    steps = s.ssl_steps("mean_teacher")
    tx = s.optimizer(c.train.learning_rate, steps)
    rampup = int(c.mean_teacher.rampup_fraction * steps)
    loss = losses.make_mean_teacher_loss(model, s.prep, s.geometry, c.mean_teacher.weight, rampup)
    step = losses.make_mean_teacher_step(loss, c.mean_teacher.ema_decay)
    state = s.new_states(model, tx, "mean_teacher", teacher=True)
    state = s.train(
        "mean_teacher",
        state,
        step,
        steps,
        *s.labelled_targets(),
        sections=("mean_teacher",),
        unlabelled=True,
    )
    # The teacher is the model Mean Teacher reports.
    teacher = state.replace(params=state.teacher_params, batch_stats=state.teacher_batch_stats)
    return s.scored_positions(model, teacher)


def run_fixmatch(s: Suite, rule: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(scored positions, `fixmatch_selection` of the trained model)."""
    c, f = s.config, s.config.fixmatch
    cells = Cells.covering(s.train_xy[: s.n_labelled], f.cell_m)
    model = s.model(c.backbone, c.width, cells=cells.count if rule == "confidence" else 0)
    steps = s.ssl_steps("fixmatch")
    tx = s.optimizer(c.train.learning_rate, steps)
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
        steps,
        *s.labelled_targets(),
        sections=("fixmatch",),
        unlabelled=True,
    )
    return s.scored_positions(model, state), fixmatch_selection(s, model, state, rule)


def fixmatch_selection(s: Suite, model, state: TrainState, rule: str) -> dict[str, Any]:
    """What FixMatch's `rule` keeps of the whole unlabelled pool at the end of training — weak
    views drawn as the loss draws them (random TA and noise, running statistics) — and the true
    error of the kept and of the rejected pseudo-positions. The truth is read here only, never
    by the training. Per seed, and their mean."""
    f, n_l = s.config.fixmatch, s.n_labelled
    csi, sector, truth = s.train_csi[n_l:], s.train_sector[n_l:], s.unlabelled_xy
    first = s.predict(model, state, csi, sector, view=1)
    weak = first["xy"][:, :, 0]  # the loss's pseudo target: head 0 of the weak view
    if rule == "confidence":
        keep = first["cell_confidence"] >= f.threshold
        pseudo = weak
    else:
        second = s.predict(model, state, csi, sector, view=2)["xy"][:, :, 0]
        keep = np.linalg.norm(weak - second, axis=-1) < f.distance_threshold_m
        pseudo = 0.5 * (weak + second)
    error = np.linalg.norm(pseudo - truth[None], axis=-1)  # (seeds, rows)

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


def run_consistency(
    s: Suite, model, pretrained: TrainState
) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
    """Stages 2-3 for config.consistency.rounds rounds from the stage-1 model.

    Each round labels the unlabelled rows not yet kept from two independent sources
    (`pseudo_labels`): A, CSI-signature interpolation over the anchors (labelled + kept rows);
    B, network B (config.consistency.network_b, trained on the labelled rows, then fine-tuned on
    the anchors each round). Rows where they agree within `agreement_radius_m` are kept; stage 3
    fine-tunes the current model on labelled + kept rows — unless the oracle gate (`gate`) finds
    the kept labels no better than the stage-1 model on those rows, then the round keeps its model.

    Returns test and unlabelled-pool positions after round 1 ('consistency') and after the last
    round ('consistency_iterative'), and per-round statistics with the kept-label report.
    """
    c, k = s.config, s.config.consistency
    tx = s.optimizer(c.finetune.learning_rate, c.finetune.num_steps)
    n_l = s.n_labelled
    xy_l = s.train_xy[:n_l].astype(np.float64)
    truth = s.unlabelled_xy
    sector_u = s.train_sector[n_l:]
    base_targets, base_weights, _ = s.labelled_targets()
    steps: dict[int, Any] = {}  # one compiled step per network, shared by its fine-tunes
    fitted: dict[int, list[np.ndarray]] = {}  # each network's last training rows, per member
    signatures = s.signatures(s.train_csi, k.signature_bins)
    signature_u = signatures[n_l:]
    stage1_u = s.unlabelled_positions(model, pretrained)
    pseudo = np.full((s.n, len(truth), 2), np.nan)  # kept labels so far, per member
    model_b, state_b = run_supervised(s, k.network_b, stage="consistency/network_b")
    current, previous, previous_b = pretrained, "supervised", "consistency/network_b"
    positions: dict[str, dict[str, np.ndarray]] = {"test": {}, "unlabelled": {}}
    stats: list[dict[str, Any]] = []

    def finetune(name: str, net, init: TrainState, labels: np.ndarray, upstream: str):
        targets, weights = base_targets.copy(), base_weights.copy()
        have = np.isfinite(labels).all(-1)
        targets[:, n_l:][have] = labels[have]
        weights[:, n_l:][have] = k.pseudo_weight
        pools = [np.concatenate([np.arange(n_l), n_l + np.flatnonzero(h)]) for h in have]
        fitted[id(net)] = pools
        if id(net) not in steps:
            loss = losses.make_supervised_loss(net, s.prep, s.geometry)
            steps[id(net)] = make_train_step(loss, jit=False)
        return s.train(
            name,
            s.new_states(net, tx, name, init_from=init),
            steps[id(net)],
            c.finetune.num_steps,
            targets,
            weights,
            pools,
            sections=("consistency", "finetune"),
            upstream=upstream,
        )

    fitted_b = [np.arange(n_l)] * s.n  # network B's training rows (train table), per member
    for r in range(1, k.rounds + 1):
        have = np.isfinite(pseudo).all(-1)
        open_rows = ~have  # rows not yet kept: the ones this round may label
        table_xy = np.concatenate([np.broadcast_to(xy_l, (s.n, n_l, 2)), pseudo], axis=1)
        labels_a = []
        for m in range(s.n):
            anchors = np.concatenate([np.arange(n_l), n_l + np.flatnonzero(have[m])])
            scored = n_l + np.flatnonzero(open_rows[m])
            where = f"consistency round {r}, member {m}"
            pseudo_labels.assert_cross_fitted(anchors, scored, f"{where}, source A")
            pseudo_labels.assert_cross_fitted(fitted_b[m], scored, f"{where}, source B")
            found = np.full((len(truth), 2), np.nan)  # kept rows are not labelled again
            found[open_rows[m]] = pseudo_labels.profile_labels(
                signature_u[open_rows[m]],
                sector_u[open_rows[m]],
                signatures[anchors],
                s.train_sector[anchors],
                table_xy[m, anchors],
                k.k,
            )
            labels_a.append(found)
        labels_a = np.stack(labels_a)
        labels_b = np.where(open_rows[..., None], s.unlabelled_positions(model_b, state_b), np.nan)
        reports = [
            pseudo_labels.kept_label_report(
                labels_a[m][open_rows[m]],
                labels_b[m][open_rows[m]],
                truth[open_rows[m]],
                stage1_u[m][open_rows[m]],
                k.report_radii_m,
            )
            for m in range(s.n)
        ]
        truth_rows = np.broadcast_to(truth, labels_a.shape)[open_rows]
        kept, agreed = pseudo_labels.agreeing_labels(labels_a, labels_b, k.agreement_radius_m)
        kept &= open_rows
        pseudo[kept] = agreed[kept]
        have = np.isfinite(pseudo).all(-1)
        label_error = np.linalg.norm(pseudo - truth, axis=-1)
        stage1_error = np.linalg.norm(stage1_u - truth, axis=-1)
        kept_label_error = float(label_error[have].mean()) if have.any() else float("nan")
        kept_stage1_error = float(stage1_error[have].mean()) if have.any() else float("nan")
        passes = bool(have.any()) and kept_label_error < kept_stage1_error
        run_stage3 = passes or k.gate == "none"
        stats.append(
            {
                "round": r,
                "source_a_error_m": mean_error(labels_a[open_rows], truth_rows),
                "source_b_error_m": mean_error(labels_b[open_rows], truth_rows),
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
        for scored, fn in (("test", s.test_positions), ("unlabelled", s.unlabelled_positions)):
            xy = fn(model, current)
            if r == 1:
                positions[scored]["consistency"] = xy
            positions[scored]["consistency_iterative"] = xy
    return positions, stats


def mean_error(xy: np.ndarray, truth: np.ndarray) -> float:
    """Mean distance in metres; NaN without rows (a round with nothing left to label)."""
    return float(np.linalg.norm(xy - truth, axis=-1).mean()) if len(xy) else float("nan")


def mean_reports(reports: list[list[dict[str, float]]]) -> list[dict[str, float]]:
    """The members' kept-label reports averaged field by field (NaN-aware), radius by radius."""
    out = []
    for rows in zip(*reports, strict=True):
        merged: dict[str, float] = {}
        for key in rows[0]:
            values = np.asarray([row[key] for row in rows], float)
            merged[key] = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
        out.append(merged)
    return out


def run_ensemble(s: Suite) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, Any]]:
    """Each group (backbone, learning rate, width) trains all seeds at once on bootstrap samples of
    the labelled rows; out-of-bag errors weight the members; seed m's ensemble = member m of
    every group. Returns {'test' | 'unlabelled': {'ensemble', 'ensemble_consensus'}} and info."""
    c, e = s.config, s.config.ensemble
    targets, weights, _ = s.labelled_targets()
    n_l = s.n_labelled
    predictions: dict[str, list[np.ndarray]] = {"test": [], "unlabelled": []}
    oob_errors = []
    for name, group in sorted(e.groups.items()):
        stage = f"ensemble/{name}"
        rng = [np.random.default_rng(named_seed(c.seed, stage, "bootstrap", m)) for m in range(s.n)]
        pools = [r.choice(n_l, n_l, replace=True) if e.bootstrap else np.arange(n_l) for r in rng]
        model = s.model(group.backbone, group.get("width", 0))
        state = supervised_stage(
            s, stage, model, group.learning_rate, targets, weights, pools, sections=("ensemble",)
        )
        for scored, xy in s.scored_positions(model, state).items():
            predictions[scored].append(xy)
        labelled_xy = s.positions(model, state, s.train_csi[:n_l], s.train_sector[:n_l])
        errors = np.linalg.norm(labelled_xy - s.train_xy[:n_l], axis=-1)
        oob = []
        for m in range(s.n):
            out_of_bag = np.setdiff1d(np.arange(n_l), pools[m])
            oob.append(errors[m, out_of_bag].mean() if len(out_of_bag) else errors[m].mean())
        oob_errors.append(oob)
    oob = np.asarray(oob_errors).T  # (seeds, groups)
    positions: dict[str, dict[str, np.ndarray]] = {}
    agreeing = []
    for scored, per_group in predictions.items():
        members = np.stack(per_group, 1)  # (seeds, groups, rows, 2)
        averaged, agreed = [], []
        for m in range(s.n):
            w = inverse_error_weights(jnp.asarray(oob[m]))
            averaged.append(np.asarray(weighted_average(jnp.asarray(members[m]), w)))
            estimate, count = consensus(jnp.asarray(members[m]), e.consensus_radius_m, w)
            agreed.append(np.asarray(estimate))
            if scored == "test":
                agreeing.append(float(np.asarray(count).mean()))
        positions[scored] = {"ensemble": np.stack(averaged), "ensemble_consensus": np.stack(agreed)}
    info = {
        "groups": sorted(e.groups.keys()),
        "out_of_bag_error_m": oob.tolist(),
        "mean_agreeing_members": agreeing,
    }
    return positions, info


def run_sector_heads(s: Suite) -> dict[str, np.ndarray]:
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
    return s.scored_positions(model, state)

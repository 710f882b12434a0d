"""The ensemble (CSI paper §III-B, Fig. 3 block A): groups of members that differ in architecture,
width or learning rate, each trained on a bootstrap sample of a seed's labelled rows, combined.

`weighted_average` weighs members (e.g. by inverse validation error); `consensus` keeps, per sample,
the members that agree: those within `radius_m` of the members' coordinate-wise median, averaged
with their weights (all members when none is that close). The paper names weighted averaging and
"consensus regions" without a formula; the median-radius rule is our choice.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxfp.methods.csi.budget import ensemble_group_steps
from jaxfp.methods.csi.study import Study
from jaxfp.methods.csi.supervised import supervised_stage
from jaxfp.train.keys import named_seed


def weighted_average(predictions: jax.Array, weights: jax.Array | None = None) -> jax.Array:
    """(members, n, 2) -> (n, 2); `weights` (members,) are normalised to sum to one."""
    members = predictions.shape[0]
    weights = jnp.ones(members) if weights is None else jnp.asarray(weights, predictions.dtype)
    weights = weights / jnp.sum(weights)
    return jnp.einsum("m,mnc->nc", weights, predictions)


def inverse_error_weights(validation_errors: jax.Array) -> jax.Array:
    """Member weights proportional to 1 / mean validation error."""
    return 1.0 / jnp.maximum(jnp.asarray(validation_errors), 1e-9)


def consensus(
    predictions: jax.Array, radius_m: float, weights: jax.Array | None = None
) -> tuple[jax.Array, jax.Array]:
    """(estimates (n, 2), number of agreeing members (n,)) by the median-radius rule."""
    members = predictions.shape[0]
    weights = jnp.ones(members) if weights is None else jnp.asarray(weights, predictions.dtype)
    median = jnp.median(predictions, axis=0)
    near = jnp.linalg.norm(predictions - median[None], axis=-1) <= radius_m  # (members, n)
    near = jnp.where(near.any(axis=0, keepdims=True), near, True)
    w = near * weights[:, None]
    estimate = jnp.einsum("mn,mnc->nc", w, predictions) / jnp.sum(w, axis=0)[:, None]
    return estimate, near.sum(axis=0)


def run_ensemble(s: Study) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, Any]]:
    """Each group (backbone, learning rate, width) trains all seeds at once for its share of the
    budget (`budget.ensemble_group_steps`), each seed on its own bootstrap sample of its labelled rows; out-of-bag errors (labelled rows outside the sample:
    a validation part no score sees) weight the members; seed m's ensemble = member m of every
    group. Returns {'test' | 'unlabelled': {'ensemble', 'ensemble_consensus'}} and info."""
    e = s.config.ensemble
    targets, weights, labelled = s.labelled_targets()
    truth = s.truth("labelled")
    predictions: dict[str, list[np.ndarray]] = {part: [] for part in s.scored}
    oob_errors = []
    for name, group in sorted(e.groups.items()):
        stage = f"ensemble/{name}"
        pools = [
            np.random.default_rng(named_seed(seed, stage, "bootstrap")).choice(
                rows, len(rows), replace=True
            )
            if e.bootstrap
            else rows
            for seed, rows in zip(s.seeds, labelled, strict=True)
        ]
        model = s.model(group.backbone, group.get("width", 0))
        state = supervised_stage(
            s,
            stage,
            model,
            group.learning_rate,
            targets,
            weights,
            pools,
            steps=ensemble_group_steps(s.config),
            sections=("ensemble",),
        )
        for part, xy in s.scored_positions(model, state).items():
            predictions[part].append(xy)
        errors = np.linalg.norm(s.positions(model, state, s.parts["labelled"]) - truth, axis=-1)
        oob = []
        for m in range(s.n):
            out_of_bag = ~np.isin(labelled[m], pools[m])
            oob.append(errors[m, out_of_bag].mean() if out_of_bag.any() else errors[m].mean())
        oob_errors.append(oob)
    oob = np.asarray(oob_errors).T  # (seeds, groups)
    positions: dict[str, dict[str, np.ndarray]] = {}
    agreeing = []
    for part, per_group in predictions.items():
        members = np.stack(per_group, 1)  # (seeds, groups, rows, 2)
        averaged, agreed = [], []
        for m in range(s.n):
            w = inverse_error_weights(jnp.asarray(oob[m]))
            averaged.append(np.asarray(weighted_average(jnp.asarray(members[m]), w)))
            estimate, count = consensus(jnp.asarray(members[m]), e.consensus_radius_m, w)
            agreed.append(np.asarray(estimate))
            if part == "test":
                agreeing.append(float(np.asarray(count).mean()))
        positions[part] = {"ensemble": np.stack(averaged), "ensemble_consensus": np.stack(agreed)}
    info = {
        "groups": sorted(e.groups.keys()),
        "out_of_bag_error_m": oob.tolist(),
        "mean_agreeing_members": agreeing,
    }
    return positions, info

"""Losses for CSI positioning with few labels (CSI paper §III-A, §III-C, §IV-C).

Every model is a `PositionHeads` net; positions are normalised as (xy - BS) / scale, so sector
rotation is a rotation about the origin; with `SiteFrame.sector_frame` every target is in its
serving sector's frame (and the sector heads' rotations between boresights vanish). Batches carry labelled (or pseudo-labelled) rows as
'csi', 'xy' (metres), 'weight', 'sector' and, for the methods that use them, unlabelled rows as
'ucsi', 'usector'. Choices where the paper is silent, one line each:

- Mean Teacher: consistency = squared distance between the student's and the EMA teacher's
  positions of the same CSI, weight ramped up by exp(-5 (1 - t/T)^2). The paper's (`mean_teacher`)
  feeds both the same TA and noise draw, as it had no augmentation that applies to CSI; ours
  (`mean_teacher_aug`, `independent_views`) gives each its own draw.
- Strong augmentation (FixMatch): the weak one (TA + AWGN) with a lower SNR and a longer TA.
- FixMatch: the weak views go through the model without gradient in inference mode (running
  batch statistics), the labelled rows and the strong view through one training pass.
- FixMatch, confidence: the 'class' is a grid cell of `cell_m` over the labelled area; a
  classifier head beside the position head gives the probability; a weak view with
  max-probability >= threshold makes its position and cell the strong view's targets.
- FixMatch, distance: two weak views whose positions lie within `distance_threshold_m` make
  their mean the strong view's target (the paper's 'coordinate prediction error' threshold).
- FixMatch, both rules: position terms are squared distances in units of `position_unit_m`
  (the cell size by default), so a one-cell error costs 1, the order of a cell cross-entropy in
  nats; the two rules share the unit so they differ only in the rule.
- Sector heads: a sample of sector s trains head h on its position rotated by
  azimuth_h - azimuth_s (own head weight 1, others `rotated_weight`); for unlabelled samples,
  head h is pulled towards the rotated (stop-gradient) output of the sample's own head.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxfp.common.geometry import Cells, SiteFrame, rotate_xy
from jaxfp.train.state import TeacherState, TrainState
from jaxfp.train.steps import LossFn, Step, make_train_step

Prep = Callable[[jax.Array, jax.Array], jax.Array]


def forward(
    model: nn.Module, params: Any, batch_stats: Any, x: jax.Array, key: jax.Array
) -> tuple[dict[str, jax.Array], Any]:
    """A training-mode forward pass; returns (outputs, updated batch statistics)."""
    out, updates = model.apply(
        {"params": params, "batch_stats": batch_stats},
        x,
        train=True,
        rngs={"dropout": key},
        mutable=["batch_stats"],
    )
    return out, updates["batch_stats"]


def own_head(xy_heads: jax.Array, sector: jax.Array) -> jax.Array:
    """(batch, heads, 2) -> (batch, 2): each sample's own sector head (the only one if heads=1)."""
    if xy_heads.shape[1] == 1:
        return xy_heads[:, 0]
    return jnp.take_along_axis(xy_heads, sector[:, None, None].astype(jnp.int32), axis=1)[:, 0]


def rotation_to_heads(azimuths: jax.Array, sector: jax.Array) -> jax.Array:
    """(batch, heads) angles that carry a position of `sector` into each head's sector."""
    return azimuths[None, :] - azimuths[sector][:, None]


def labelled_loss(
    xy_heads: jax.Array,
    target: jax.Array,
    sector: jax.Array,
    weight: jax.Array,
    azimuths: jax.Array,
    rotated_weight: float,
) -> jax.Array:
    """Weighted mean squared distance; with several heads, every head learns the rotated target."""
    heads = xy_heads.shape[1]
    if heads == 1:
        per = jnp.sum((xy_heads[:, 0] - target) ** 2, -1)
        return jnp.sum(weight * per) / jnp.maximum(jnp.sum(weight), 1e-9)
    rotated = rotate_xy(target[:, None, :], rotation_to_heads(azimuths, sector), (0.0, 0.0))
    own = jax.nn.one_hot(sector, heads)
    w = weight[:, None] * (own + rotated_weight * (1.0 - own))
    per = jnp.sum((xy_heads - rotated) ** 2, -1)
    return jnp.sum(w * per) / jnp.maximum(jnp.sum(w), 1e-9)


def rotation_consistency(xy_heads: jax.Array, sector: jax.Array, azimuths: jax.Array) -> jax.Array:
    """Unlabelled rows: every other head should give the own head's position, rotated."""
    heads = xy_heads.shape[1]
    own = jax.lax.stop_gradient(own_head(xy_heads, sector))
    target = rotate_xy(own[:, None, :], rotation_to_heads(azimuths, sector), (0.0, 0.0))
    others = 1.0 - jax.nn.one_hot(sector, heads)
    per = jnp.sum((xy_heads - target) ** 2, -1)
    return jnp.sum(others * per) / jnp.maximum(jnp.sum(others), 1e-9)


def _labelled_metrics(xy_heads, batch, geometry: SiteFrame, sup: jax.Array) -> dict[str, jax.Array]:
    target = geometry.targets(batch["xy"], batch["sector"])
    error = jnp.linalg.norm(own_head(xy_heads, batch["sector"]) - target, axis=-1)
    weight = batch["weight"]
    distance = jnp.sum(weight * error) / jnp.maximum(jnp.sum(weight), 1e-9) * geometry.scale
    return {"supervised": sup, "distance_m": distance}


def make_supervised_loss(
    model: nn.Module,
    prep: Prep,
    geometry: SiteFrame,
    rotated_weight: float = 0.0,
    consistency_weight: float = 0.0,
) -> LossFn:
    """Labelled (and pseudo-labelled) rows; with sector heads, rotation into every head and, when
    `consistency_weight` > 0, the rotation consistency on the batch's unlabelled rows."""
    azimuths = geometry.head_azimuths()

    def loss_fn(params, state: TrainState, batch, key):
        label_key, unlabelled_key, dropout_key = jax.random.split(key, 3)
        x = prep(batch["csi"], label_key)
        n_labelled = x.shape[0]
        if consistency_weight:
            x = jnp.concatenate([x, prep(batch["ucsi"], unlabelled_key)])
        out, batch_stats = forward(model, params, state.batch_stats, x, dropout_key)
        xy = out["xy"]
        target = geometry.targets(batch["xy"], batch["sector"])
        sup = labelled_loss(
            xy[:n_labelled], target, batch["sector"], batch["weight"], azimuths, rotated_weight
        )
        metrics = _labelled_metrics(xy[:n_labelled], batch, geometry, sup)
        loss = sup
        if consistency_weight:
            rotation = rotation_consistency(xy[n_labelled:], batch["usector"], azimuths)
            loss = loss + consistency_weight * rotation
            metrics["rotation_consistency"] = rotation
        return loss, (metrics, batch_stats)

    return loss_fn


def make_mean_teacher_loss(
    model: nn.Module,
    prep: Prep,
    geometry: SiteFrame,
    weight: float,
    rampup_steps: int,
    independent_views: bool = False,
) -> LossFn:
    """Supervised loss + ramped consistency with the EMA teacher on unlabelled rows; with
    `independent_views` the teacher sees its own TA and noise draw of each row, else the
    student's."""
    azimuths = geometry.head_azimuths()

    def loss_fn(params, state: TeacherState, batch, key):
        label_key, student_key, teacher_key, dropout_key = jax.random.split(key, 4)
        x = jnp.concatenate([prep(batch["csi"], label_key), prep(batch["ucsi"], student_key)])
        n_labelled = batch["csi"].shape[0]
        out, batch_stats = forward(model, params, state.batch_stats, x, dropout_key)
        xy = out["xy"]
        target = geometry.targets(batch["xy"], batch["sector"])
        sup = labelled_loss(xy[:n_labelled], target, batch["sector"], batch["weight"], azimuths, 0)
        teacher_x = prep(batch["ucsi"], teacher_key) if independent_views else x[n_labelled:]
        teacher = model.apply(
            {"params": state.teacher_params, "batch_stats": state.teacher_batch_stats},
            teacher_x,
            train=False,
        )
        teacher_xy = jax.lax.stop_gradient(teacher["xy"][:, 0])
        consistency = jnp.mean(jnp.sum((xy[n_labelled:, 0] - teacher_xy) ** 2, -1))
        progress = jnp.clip(state.step / max(rampup_steps, 1), 0.0, 1.0)
        ramp = jnp.exp(-5.0 * (1.0 - progress) ** 2)
        metrics = _labelled_metrics(xy[:n_labelled], batch, geometry, sup)
        metrics.update(consistency=consistency, consistency_weight=weight * ramp)
        return sup + weight * ramp * consistency, (metrics, batch_stats)

    return loss_fn


def make_mean_teacher_step(loss_fn: LossFn, decay: float) -> Step:
    """A student step followed by the teacher's EMA update (un-jitted, for `member_step`)."""
    student_step = make_train_step(loss_fn, jit=False)

    def step(state: TeacherState, batch, rng: jax.Array):
        state, metrics = student_step(state, batch, rng)

        def ema(teacher, student):
            return jax.tree.map(lambda t, s: decay * t + (1.0 - decay) * s, teacher, student)

        state = state.replace(
            teacher_params=ema(state.teacher_params, state.params),
            teacher_batch_stats=ema(state.teacher_batch_stats, state.batch_stats),
        )
        return state, metrics

    return step


def make_fixmatch_loss(
    model: nn.Module,
    prep: Prep,
    strong_prep: Prep,
    geometry: SiteFrame,
    rule: str,
    weight: float,
    threshold: float = 0.95,
    distance_threshold_m: float = 5.0,
    cells: Cells | None = None,
    position_unit_m: float | None = None,
) -> LossFn:
    """FixMatch for regression; `rule` 'confidence' (cell probability) or 'distance'. Position
    terms are squared distances in `position_unit_m` (None: the geometry's scale, unscaled)."""
    if rule not in ("confidence", "distance"):
        raise ValueError(f"fixmatch rule: expected 'confidence' or 'distance', got {rule!r}")
    if rule == "confidence" and cells is None:
        raise ValueError("fixmatch rule 'confidence' needs the grid cells that act as classes")
    if position_unit_m is not None and not position_unit_m > 0:
        raise ValueError(f"fixmatch position_unit_m: expected > 0 metres, got {position_unit_m}")
    azimuths = geometry.head_azimuths()
    weak_views = 1 if rule == "confidence" else 2
    # Targets are in units of geometry.scale metres; this rescales squared distances to the unit.
    unit = 1.0 if position_unit_m is None else (geometry.scale / position_unit_m) ** 2

    def loss_fn(params, state: TrainState, batch, key):
        keys = jax.random.split(key, weak_views + 3)
        ucsi = batch["ucsi"]
        n_l, n_u = batch["csi"].shape[0], ucsi.shape[0]
        # Weak views label, they do not learn: one gradient-free pass with the running statistics.
        weak_x = jnp.concatenate([prep(ucsi, keys[1 + v]) for v in range(weak_views)])
        weak_out = model.apply(
            {"params": jax.lax.stop_gradient(params), "batch_stats": state.batch_stats},
            weak_x,
            train=False,
        )
        weak_xy = jax.lax.stop_gradient(weak_out["xy"][:, 0])
        weak = [weak_xy[v * n_u : (v + 1) * n_u] for v in range(weak_views)]
        x = jnp.concatenate([prep(batch["csi"], keys[0]), strong_prep(ucsi, keys[-2])])
        out, batch_stats = forward(model, params, state.batch_stats, x, keys[-1])
        target = geometry.targets(batch["xy"], batch["sector"])
        sup = labelled_loss(
            out["xy"][:n_l], target, batch["sector"], batch["weight"], azimuths, 0.0
        )
        metrics = _labelled_metrics(out["xy"][:n_l], batch, geometry, sup)
        strong = out["xy"][n_l:, 0]
        loss = unit * sup
        if rule == "confidence":
            logits = out["logits"]
            cell_loss = optax.softmax_cross_entropy_with_integer_labels(
                logits[:n_l], cells.index(batch["xy"])
            )
            probs = jax.nn.softmax(jax.lax.stop_gradient(weak_out["logits"]))
            mask = (jnp.max(probs, -1) >= threshold).astype(jnp.float32)
            strong_ce = optax.softmax_cross_entropy_with_integer_labels(
                logits[n_l:], jnp.argmax(probs, -1)
            )
            per = unit * jnp.sum((strong - weak[0]) ** 2, -1) + strong_ce
            loss = loss + jnp.sum(batch["weight"] * cell_loss) / jnp.sum(batch["weight"])
            metrics["cell_ce"] = jnp.mean(cell_loss)
        else:
            gap_m = jnp.linalg.norm(weak[0] - weak[1], axis=-1) * geometry.scale
            mask = (gap_m < distance_threshold_m).astype(jnp.float32)
            per = unit * jnp.sum((strong - 0.5 * (weak[0] + weak[1])) ** 2, -1)
        unsupervised = jnp.mean(mask * per)
        metrics.update(
            unsupervised=unsupervised, mask_rate=jnp.mean(mask), supervised_in_unit=unit * sup
        )
        return loss + weight * unsupervised, (metrics, batch_stats)

    return loss_fn

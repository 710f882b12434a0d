"""FPN's objective and predictions: categorical cross-entropy over the reference points at every
step of a walk, with random AP removal (§3.2.1) drawn from the step's key.

The batch: 'signals' (B, T, L) and 'map' (R, L) on the unit scale, 'point' (B, T) the reference
point of each step. One removal mask per step (the same APs gone from the map and every walk of
the batch: an AP removed from the site).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxfp.common.chunks import map_chunks
from jaxfp.methods.fpn.nets import Positioner
from jaxfp.methods.fpn.radio_map import removal_mask, remove_aps
from jaxfp.train.state import TrainState


class LossSettings(NamedTuple):
    net: Positioner
    ap_removal_rate: float


def cross_entropy(logits: jax.Array, point: jax.Array) -> jax.Array:
    return optax.softmax_cross_entropy_with_integer_labels(logits, point).mean()


def make_loss(settings: LossSettings):
    """`loss_fn(params, state, batch, key)` for `make_train_step`."""

    def loss_fn(params: Any, state: TrainState, batch: Any, key: jax.Array):
        signals, radio_map = batch["signals"], batch["map"]
        if settings.ap_removal_rate > 0:
            kept = removal_mask(key, signals.shape[-1], settings.ap_removal_rate)
            signals, radio_map = remove_aps(signals, kept), remove_aps(radio_map, kept)
        logits, _ = settings.net.apply({"params": params}, signals, radio_map)
        accuracy = jnp.mean(jnp.argmax(logits, -1) == batch["point"])
        return cross_entropy(logits, batch["point"]), ({"accuracy": accuracy}, None)

    return loss_fn


@functools.partial(jax.jit, static_argnums=0)
def stacked_logits(
    net: Positioner, params: Any, signals: jax.Array, radio_map: jax.Array
) -> jax.Array:
    """(seeds, B, T, R) logits of every seed's parameters on the same walks and map."""
    return jax.vmap(lambda p: net.apply({"params": p}, signals, radio_map)[0])(params)


@functools.partial(jax.jit, static_argnums=0)
def stacked_cross_entropy(
    net: Positioner, params: Any, signals: jax.Array, radio_map: jax.Array, point: jax.Array
) -> jax.Array:
    """(seeds,) validation cross-entropy."""
    logits = stacked_logits(net, params, signals, radio_map)
    return jax.vmap(lambda lg: cross_entropy(lg, point))(logits)


def predict_points(
    net: Positioner, params: Any, signals: np.ndarray, radio_map: np.ndarray, chunk: int
) -> np.ndarray:
    """(seeds, W, T) most probable reference point at each step of each walk (W, T, L)."""
    radio_map = jnp.asarray(radio_map)

    def run(block: np.ndarray, _: int) -> jax.Array:
        return jnp.argmax(stacked_logits(net, params, jnp.asarray(block), radio_map), -1)

    return map_chunks(run, signals, chunk, axis=1)

"""FPN's objective (§4.2): categorical cross-entropy over the reference points at every step of a
walk, with random AP removal (§3.2.1) drawn from the step's key.

The batch: 'signals' (B, T, L) and 'map' (R, L) on the unit scale, 'point' (B, T) the reference
point of each step. One removal mask per step (the same APs gone from the map and every walk of
the batch: an AP removed from the site).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxfp.methods.fpn.nets import Positioner
from jaxfp.methods.fpn.radio_map import removal_mask, remove_aps
from jaxfp.train.state import TrainState


class LossSettings(NamedTuple):
    net: Positioner
    ap_removal_rate: float


def cross_entropy(logits: jax.Array, point: jax.Array) -> jax.Array:
    """Mean over every step of −log softmax(logits)[point]: logits (..., R), point (...)."""
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

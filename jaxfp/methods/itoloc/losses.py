"""iToLoc's objective (eq. 11): L = La + γ Ls - λ Ld, as one loss through a gradient-reversal layer.

The batch: 'image' (B, S, S); per location head k, 'target' (H, B, C) label distributions (one-hot,
pseudo labels, or smeared, eq. 12-13), 'weight' (H, B) which rows belong to head k's training set,
'rp' (H, B) the label's reference location (for Ls); 'domain' (B,) device x period ids.

- La (eq. 5): each head's cross-entropy with its targets, averaged over its rows, summed over heads.
- Ls (eq. 10): each head's expected distance Σ_c w(y_i, c) ŷ_ic, w the metres between location c
  and the label's location, averaged the same way; γ weighs it.
- Ld (eq. 8): the discriminator's cross-entropy with the domains. The discriminator minimises it;
  the reversal layer hands the extractor -λ times its gradient, so one step plays eq. 11's
  minimax (the paper alternates the two updates; simultaneous is DANN's usual form). λ follows the
  DANN warm-up 2 / (1 + exp(-10 p)) - 1 over the stage's steps p.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxfp.methods.itoloc.nets import ItoLocNet
from jaxfp.nets.gradient_reversal import warmup_scale
from jaxfp.train.state import TrainState


class LossSettings(NamedTuple):
    net: ItoLocNet
    spatial_weight: float  # γ
    adversary_weight: float  # λ at the end of the warm-up (0: no adversary)
    warmup_steps: int


def weighted_mean(values: jax.Array, weight: jax.Array) -> jax.Array:
    """Per head: Σ_i w_i v_i / Σ_i w_i over the last axis, summed over heads."""
    return jnp.sum(jnp.sum(values * weight, -1) / jnp.maximum(jnp.sum(weight, -1), 1e-9))


def make_loss(settings: LossSettings, distances: jax.Array):
    """`loss_fn(params, state, batch, key)` for `make_train_step`; `distances` (C, C) metres."""

    def loss_fn(params: Any, state: TrainState, batch: Any, key: jax.Array):
        progress = jnp.minimum(state.step / max(settings.warmup_steps, 1), 1.0)
        reversal = warmup_scale(progress, settings.adversary_weight)
        out, updates = settings.net.apply(
            {"params": params, "batch_stats": state.batch_stats},
            batch["image"],
            train=True,
            reversal=reversal,
            rngs={"dropout": key},
            mutable=["batch_stats"],
        )
        log_p = jax.nn.log_softmax(out["locations"])  # (H, B, C)
        weight = batch["weight"]
        la = weighted_mean(-jnp.sum(batch["target"] * log_p, -1), weight)
        expected_distance = jnp.sum(distances[batch["rp"]] * jnp.exp(log_p), -1)
        ls = weighted_mean(expected_distance, weight)
        ld = jnp.mean(
            optax.softmax_cross_entropy_with_integer_labels(out["domains"], batch["domain"])
        )
        loss = la + settings.spatial_weight * ls + ld
        accuracy = jnp.mean(jnp.argmax(out["domains"], -1) == batch["domain"])
        metrics = {
            "location_ce": la,
            "spatial": ls,
            "domain_ce": ld,
            "domain_accuracy": accuracy,
            "reversal": reversal,
        }
        return loss, (metrics, updates["batch_stats"])

    return loss_fn

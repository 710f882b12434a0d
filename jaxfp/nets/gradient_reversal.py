"""The gradient-reversal layer of domain-adversarial training (Ganin & Lempitsky, 2015)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


@jax.custom_vjp
def reverse_gradient(x: jax.Array, scale: jax.Array) -> jax.Array:
    """Identity forward; the gradient flowing back through it is multiplied by -scale, so what
    lies before it maximises the loss after it (scale gets no gradient)."""
    return x


def _forward(x: jax.Array, scale: jax.Array) -> tuple[jax.Array, jax.Array]:
    return x, scale


def _backward(scale: jax.Array, g: jax.Array) -> tuple[jax.Array, jax.Array]:
    return -scale * g, jnp.zeros_like(scale)


reverse_gradient.defvjp(_forward, _backward)


def warmup_scale(progress: jax.Array, maximum: float, rate: float = 10.0) -> jax.Array:
    """DANN's schedule: maximum · (2 / (1 + exp(-rate · p)) - 1) for training progress p in [0, 1],
    so the adversary's pull grows from 0 while the features are still forming."""
    return maximum * (2.0 / (1.0 + jnp.exp(-rate * progress)) - 1.0)

"""The backbones' output: a dense position head, or the pooled features for a head outside."""

from __future__ import annotations

import flax.linen as nn
import jax


def head(outputs: int | None, features: jax.Array) -> jax.Array:
    """The position head, or the features themselves when `outputs` is None."""
    return features if outputs is None else nn.Dense(outputs, name="head")(features)

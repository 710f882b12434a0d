"""A multilayer perceptron: the smallest network the training core and the benchmarks use."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax


class MLP(nn.Module):
    """Dense layers with ReLU, optional batch norm and dropout, then a linear head."""

    hidden: Sequence[int] = (256, 256)
    out: int = 2
    dropout: float = 0.0
    batch_norm: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        for i, width in enumerate(self.hidden):
            # No bias before batch norm: BN's shift replaces it, and its gradient would be pure noise.
            x = nn.Dense(width, use_bias=not self.batch_norm, name=f"dense_{i}")(x)
            if self.batch_norm:
                x = nn.BatchNorm(use_running_average=not train, name=f"bn_{i}")(x)
            x = nn.relu(x)
            if self.dropout:
                x = nn.Dropout(self.dropout, deterministic=not train, name=f"dropout_{i}")(x)
        return nn.Dense(self.out, name="head")(x)

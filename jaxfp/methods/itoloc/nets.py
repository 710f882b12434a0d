"""iToLoc's networks (Fig. 8), one line per choice the figure leaves open:

- every conv block: 'SAME' convolution, batch norm, leaky ReLU 0.1; dropout 0.5 after each max-pool.
- feature extractor ME: two conv blocks 3x3x32.
- M1: conv block 3x3x32, max-pool 2x2, conv block 3x3x64, average-pool, dense C.
- M2: the same with 5x5 kernels.
- M3: residual block 3x3x32 (two convs, identity skip), max-pool 2x2, residual block 3x3x32,
  average-pool, dense C.
- Fig. 8's "Average-pooling" before the FC (`pooling`): "local", a 2x2 stride-2 average pool
  like the max-pools beside it, then the FC over the flattened map, so the FC still sees where
  on the image (which AP pair) a feature is; "global" (an ablation) averages the whole map away.
- domain discriminator MD: M1's layout with |D| outputs, fed through the gradient-reversal layer.
- pooling uses 'SAME' padding so odd image sides work; the dense layers give logits (the softmax
  of eq. 4 and 7 lives in the losses).
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxfp.nets.conv import Conv
from jaxfp.nets.gradient_reversal import reverse_gradient
from jaxfp.nets.pooling import max_pool

HEADS = ("conv3", "conv5", "residual")
POOLING = ("local", "global")


class ConvBlock(nn.Module):
    features: int
    kernel: int = 3

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        x = Conv(self.features, (self.kernel, self.kernel), padding="SAME", use_bias=False)(x)
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
        return nn.leaky_relu(x, 0.1)


class ResidualBlock(nn.Module):
    features: int
    kernel: int = 3

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        h = ConvBlock(self.features, self.kernel)(x, train)
        h = Conv(self.features, (self.kernel, self.kernel), padding="SAME", use_bias=False)(h)
        h = nn.BatchNorm(use_running_average=not train, momentum=0.9)(h)
        if x.shape[-1] != self.features:
            x = Conv(self.features, (1, 1), use_bias=False)(x)
        return nn.leaky_relu(h + x, 0.1)


class Head(nn.Module):
    """One of M1, M2, M3 (or MD): `kind` in HEADS."""

    kind: str
    outputs: int
    dropout: float = 0.5
    pooling: str = "local"

    @nn.compact
    def __call__(self, z: jax.Array, train: bool, stochastic: bool) -> jax.Array:
        if self.kind == "residual":
            first, second = ResidualBlock(32), ResidualBlock(32)
        else:
            k = 5 if self.kind == "conv5" else 3
            first, second = ConvBlock(32, k), ConvBlock(64, k)
        h = first(z, train)
        h = max_pool(h, (2, 2), (2, 2), padding="SAME")
        h = nn.Dropout(self.dropout, deterministic=not stochastic)(h)
        h = second(h, train)
        if self.pooling == "global":
            return nn.Dense(self.outputs)(jnp.mean(h, axis=(1, 2)))
        if self.pooling != "local":
            raise ValueError(f"pooling: expected one of {POOLING}, got {self.pooling!r}")
        h = nn.avg_pool(h, (2, 2), (2, 2), padding="SAME", count_include_pad=False)
        return nn.Dense(self.outputs)(h.reshape(h.shape[0], -1))


class ItoLocNet(nn.Module):
    """Image (B, S, S) -> {'locations': (heads, B, C) logits, 'domains': (B, |D|) logits}.

    `train`: batch statistics and dropout; `dropout` alone (batch norm in test mode): the
    co-training update's stability passes."""

    locations: int
    domains: int
    heads: Sequence[str] = HEADS
    dropout: float = 0.5
    pooling: str = "local"

    @nn.compact
    def __call__(
        self,
        image: jax.Array,
        train: bool = False,
        reversal: jax.Array | float = 0.0,
        dropout: bool | None = None,
    ) -> dict[str, jax.Array]:
        stochastic = train if dropout is None else dropout
        z = image[..., None]
        for i in range(2):
            z = ConvBlock(32, name=f"extractor{i}")(z, train)
        logits = jnp.stack(
            [
                Head(kind, self.locations, self.dropout, self.pooling, name=f"m{i + 1}")(
                    z, train, stochastic
                )
                for i, kind in enumerate(self.heads)
            ]
        )
        reversed_z = reverse_gradient(z, jnp.asarray(reversal, z.dtype))
        discriminator = Head(
            "conv3", self.domains, self.dropout, self.pooling, name="discriminator"
        )
        domains = discriminator(reversed_z, train, stochastic)
        return {"locations": logits, "domains": domains}

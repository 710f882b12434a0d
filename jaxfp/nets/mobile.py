"""MobileNetV2 (Sandler et al. 2018) and ShuffleNetV2 1.0x (Ma et al. 2018) for angle-delay CSI.

Layer settings follow torchvision's, with a 2-D position head, so parameter counts match the paper's
Table I (2.23 M and 1.26 M). Input (batch, channels, angle, delay).
"""

from __future__ import annotations

from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxfp.nets.conv import Conv
from jaxfp.nets.output_head import head
from jaxfp.nets.pooling import max_pool

# (expansion t, channels c, repeats n, stride s) of MobileNetV2.
MOBILENET_V2_SETTINGS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


class ConvBN(nn.Module):
    features: int
    kernel: int = 3
    strides: int = 1
    groups: int = 1
    activation: str | None = "relu6"

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        x = Conv(
            self.features,
            (self.kernel, self.kernel),
            self.strides,
            padding=self.kernel // 2,
            feature_group_count=self.groups,
            use_bias=False,
        )(x)
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
        if self.activation == "relu6":
            return jnp.clip(x, 0.0, 6.0)
        return nn.relu(x) if self.activation == "relu" else x


class InvertedResidual(nn.Module):
    features: int
    strides: int
    expansion: int

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        hidden = x.shape[-1] * self.expansion
        y = ConvBN(hidden, 1)(x, train) if self.expansion != 1 else x
        y = ConvBN(hidden, 3, self.strides, groups=hidden)(y, train)
        y = ConvBN(self.features, 1, activation=None)(y, train)
        if self.strides == 1 and x.shape[-1] == self.features:
            y = y + x
        return y


class MobileNetV2(nn.Module):
    outputs: int | None = 2  # None: the pooled features
    dropout: float = 0.2

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        x = jnp.transpose(x, (0, 2, 3, 1))
        x = ConvBN(32, 3, 2)(x, train)
        for t, c, n, s in MOBILENET_V2_SETTINGS:
            for i in range(n):
                x = InvertedResidual(c, s if i == 0 else 1, t)(x, train)
        x = ConvBN(1280, 1)(x, train)
        x = jnp.mean(x, axis=(1, 2))
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return head(self.outputs, x)


def channel_shuffle(x: jax.Array, groups: int = 2) -> jax.Array:
    *lead, channels = x.shape
    x = x.reshape(*lead, groups, channels // groups)
    return jnp.swapaxes(x, -1, -2).reshape(*lead, channels)


class ShuffleUnit(nn.Module):
    features: int
    strides: int

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        branch = self.features // 2
        conv = partial(ConvBN, activation="relu")
        if self.strides == 1:
            keep, x = jnp.split(x, 2, axis=-1)
        else:
            keep = ConvBN(x.shape[-1], 3, 2, groups=x.shape[-1], activation=None)(x, train)
            keep = conv(branch, 1)(keep, train)
        y = conv(branch, 1)(x, train)
        y = ConvBN(branch, 3, self.strides, groups=branch, activation=None)(y, train)
        y = conv(branch, 1)(y, train)
        return channel_shuffle(jnp.concatenate([keep, y], axis=-1))


class ShuffleNetV2(nn.Module):
    outputs: int | None = 2  # None: the pooled features
    repeats: tuple[int, ...] = (4, 8, 4)
    channels: tuple[int, ...] = (24, 116, 232, 464, 1024)

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        x = jnp.transpose(x, (0, 2, 3, 1))
        x = ConvBN(self.channels[0], 3, 2, activation="relu")(x, train)
        x = max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
        for repeats, features in zip(self.repeats, self.channels[1:-1], strict=True):
            for i in range(repeats):
                x = ShuffleUnit(features, 2 if i == 0 else 1)(x, train)
        x = ConvBN(self.channels[-1], 1, activation="relu")(x, train)
        return head(self.outputs, jnp.mean(x, axis=(1, 2)))

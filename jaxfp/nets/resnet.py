"""ResNet18/34/50/101 (He et al. 2016) for angle-delay CSI, with a 2-D position head.

Input (batch, channels, angle, delay) as `jaxfp.data.csi.to_channels` gives it; the layers are the
torchvision ones (7x7/2 stem, 3x3/2 max-pool, four stages, global average pool), so parameter counts
match the paper's Table I (ResNet18 with a 2-output head: 11.18 M).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxfp.nets.conv import Conv
from jaxfp.nets.output_head import head
from jaxfp.nets.pooling import max_pool


class BasicBlock(nn.Module):
    features: int
    strides: int = 1

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        norm = partial(nn.BatchNorm, use_running_average=not train, momentum=0.9)
        residual = x
        y = Conv(self.features, (3, 3), self.strides, padding=1, use_bias=False, name="conv1")(x)
        y = nn.relu(norm(name="bn1")(y))
        y = Conv(self.features, (3, 3), padding=1, use_bias=False, name="conv2")(y)
        y = norm(name="bn2", scale_init=nn.initializers.zeros)(y)
        if residual.shape != y.shape:
            residual = Conv(self.features, (1, 1), self.strides, use_bias=False, name="proj")(x)
            residual = norm(name="proj_bn")(residual)
        return nn.relu(y + residual)


class Bottleneck(nn.Module):
    features: int
    strides: int = 1
    expansion: int = 4

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        norm = partial(nn.BatchNorm, use_running_average=not train, momentum=0.9)
        residual = x
        y = nn.relu(norm(name="bn1")(Conv(self.features, (1, 1), use_bias=False, name="conv1")(x)))
        y = Conv(self.features, (3, 3), self.strides, padding=1, use_bias=False, name="conv2")(y)
        y = nn.relu(norm(name="bn2")(y))
        y = Conv(self.features * self.expansion, (1, 1), use_bias=False, name="conv3")(y)
        y = norm(name="bn3", scale_init=nn.initializers.zeros)(y)
        if residual.shape != y.shape:
            residual = Conv(
                self.features * self.expansion, (1, 1), self.strides, use_bias=False, name="proj"
            )(x)
            residual = norm(name="proj_bn")(residual)
        return nn.relu(y + residual)


class ResNet(nn.Module):
    stage_sizes: Sequence[int]
    block: type[nn.Module] = BasicBlock
    width: int = 64
    outputs: int | None = 2  # None: the pooled features, for a head module outside

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        x = jnp.transpose(x, (0, 2, 3, 1))  # channels last for flax convolutions
        x = Conv(self.width, (7, 7), 2, padding=3, use_bias=False, name="stem")(x)
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9, name="stem_bn")(x)
        x = max_pool(nn.relu(x), (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
        for stage, blocks in enumerate(self.stage_sizes):
            for b in range(blocks):
                strides = 2 if stage > 0 and b == 0 else 1
                x = self.block(
                    self.width * 2**stage, strides, name=f"stage{stage + 1}_block{b + 1}"
                )(x, train)
        return head(self.outputs, jnp.mean(x, axis=(1, 2)))


ResNet18 = partial(ResNet, stage_sizes=(2, 2, 2, 2), block=BasicBlock)
ResNet34 = partial(ResNet, stage_sizes=(3, 4, 6, 3), block=BasicBlock)
ResNet50 = partial(ResNet, stage_sizes=(3, 4, 6, 3), block=Bottleneck)
ResNet101 = partial(ResNet, stage_sizes=(3, 4, 23, 3), block=Bottleneck)
# Not in the paper: one block per stage at a quarter of the width, so the small experiment sizes
# train many methods x seeds on 2 CPU cores in minutes.
ResNetTiny = partial(ResNet, stage_sizes=(1, 1, 1, 1), block=BasicBlock, width=16)

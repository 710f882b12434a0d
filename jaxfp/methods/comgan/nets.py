"""ComGAN's networks (§III-B and §IV-A, whose figure the extraction lost), one line per choice:

- the RSS vector's L radio units (RUs) are the sequence axis of the Conv1D layers (kernel
  `kernel`, 'SAME' padding, leaky ReLU 0.2); the RP coordinates are broadcast along it as channels.
- generator: channels [incomplete RSS (unmeasured = 0 after standardising), mask, RP] -> Conv1D
  16, 64, 128, 64, 16 -> flatten -> dense 96 (ReLU) -> dense L: the complete vector.
- critic: channels [complete RSS, RP] -> Conv1D 16, 64, 128 -> flatten -> dense 8 -> dense 1: the
  WGAN score (no batch norm: the gradient penalty is per sample).
- auxiliary RP-estimation branch: the critic's trunk shape on the RSS alone -> dense 8 -> dense D
  (the paper's "dense 8 and 2": the 2 = the RP estimate (x, y)); ĉ1 = its estimate from the real
  sample, ĉ2 from the generated one.
- localizer (the CNN of the paper's ref. [26]): Conv1D 32, 64 -> dense 128 -> dense D, regressing
  the position (the localization RPs are not training RPs, so it cannot classify them).
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


def _with_rp(channels: list[jax.Array], rp: jax.Array | None) -> jax.Array:
    """(B, L, C): per-RU channels, plus the RP's coordinates repeated along the RUs."""
    x = jnp.stack(channels, -1)
    if rp is None:
        return x
    return jnp.concatenate([x, jnp.broadcast_to(rp[:, None, :], (*x.shape[:2], rp.shape[-1]))], -1)


class PatchConv1D(nn.Module):
    """A 1-D convolution ('SAME' padding, stride 1) computed as one matmul over unfolded patches.

    Same parameters and outputs as `nn.Conv(features, (kernel,))` (kernel (k, in, out), bias), but
    XLA:CPU runs its gradients — and the gradient penalty's gradient of a gradient — as matmuls
    instead of slow convolution kernels (measured in experiments/bench/comgan.py)."""

    features: int
    kernel: int = 3

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        k, channels = self.kernel, x.shape[-1]
        w = self.param(
            "kernel", nn.initializers.lecun_normal(), (k, channels, self.features), jnp.float32
        )
        b = self.param("bias", nn.initializers.zeros_init(), (self.features,), jnp.float32)
        before = (k - 1) // 2
        padded = jnp.pad(x, ((0, 0), (before, k - 1 - before), (0, 0)))
        length = x.shape[1]
        patches = jnp.stack([padded[:, i : i + length] for i in range(k)], axis=2)  # (B, L, k, C)
        return jnp.einsum("blkc,kcf->blf", patches, w) + b


class ConvTrunk(nn.Module):
    """Conv1D layers over the RU axis, then flatten."""

    filters: Sequence[int]
    kernel: int = 3

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for i, width in enumerate(self.filters):
            x = PatchConv1D(width, self.kernel, name=f"conv{i}")(x)
            x = nn.leaky_relu(x, 0.2)
        return x.reshape(x.shape[0], -1)


class Generator(nn.Module):
    filters: Sequence[int] = (16, 64, 128, 64, 16)
    dense: int = 96
    kernel: int = 3

    @nn.compact
    def __call__(self, rss: jax.Array, mask: jax.Array, rp: jax.Array) -> jax.Array:
        h = ConvTrunk(self.filters, self.kernel, name="trunk")(_with_rp([rss * mask, mask], rp))
        h = nn.relu(nn.Dense(self.dense, name="features")(h))
        return nn.Dense(rss.shape[-1], name="out")(h)


class Critic(nn.Module):
    filters: Sequence[int] = (16, 64, 128)
    dense: int = 8
    kernel: int = 3

    @nn.compact
    def __call__(self, rss: jax.Array, rp: jax.Array) -> jax.Array:
        h = ConvTrunk(self.filters, self.kernel, name="trunk")(_with_rp([rss], rp))
        h = nn.leaky_relu(nn.Dense(self.dense, name="hidden")(h), 0.2)
        return nn.Dense(1, name="score")(h)[:, 0]


class RpEstimator(nn.Module):
    """The auxiliary branch: an RP estimate from an RSS vector alone."""

    outputs: int = 2
    filters: Sequence[int] = (16, 64, 128)
    dense: int = 8
    kernel: int = 3

    @nn.compact
    def __call__(self, rss: jax.Array) -> jax.Array:
        h = ConvTrunk(self.filters, self.kernel, name="trunk")(_with_rp([rss], None))
        h = nn.leaky_relu(nn.Dense(self.dense, name="hidden")(h), 0.2)
        return nn.Dense(self.outputs, name="rp")(h)


class Localizer(nn.Module):
    outputs: int = 2
    filters: Sequence[int] = (32, 64)
    dense: int = 128
    kernel: int = 3

    @nn.compact
    def __call__(self, rss: jax.Array, train: bool = False) -> jax.Array:
        h = ConvTrunk(self.filters, self.kernel, name="trunk")(_with_rp([rss], None))
        h = nn.relu(nn.Dense(self.dense, name="hidden")(h))
        return nn.Dense(self.outputs, name="position")(h)

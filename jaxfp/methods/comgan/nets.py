"""ComGAN's networks (§III-B and §IV-A, whose figure the extraction lost), one line per choice:

- the RSS vector's L radio units (RUs) are the sequence axis of the Conv1D layers (kernel
  `kernel`, 'SAME' padding, leaky ReLU 0.2); the RP coordinates are broadcast along it as channels.
- generator: channels [incomplete RSS (unmeasured = 0 after standardising), mask, RP] -> Conv1D
  16, 64, 128, 64, 16 -> flatten -> dense 96 (ReLU) -> dense L: the complete vector. GPR-GAN's
  generator (the baseline of ref. [13]) is the same net whose unmeasured entries hold a coarse prior
  (the Gaussian-process mean at the RP) instead of zeros: "incomplete and coarse RSS observations".
- cGAN generator (the baseline of ref. [11]): channels [noise z ~ N(0, 1) per RU, RP] -> the
  generator's trunk and head: a sample at the RP from noise; it reads neither the incomplete sample
  nor its mask (it takes them only to share the generator's call), and draws z from the "noise" rng.
- critic: channels [complete RSS, RP] -> Conv1D 16, 64, 128 -> flatten -> dense 8 -> dense 1: the
  WGAN score (no batch norm: the gradient penalty is per sample).
- auxiliary RP-estimation branch: the critic's trunk shape on the RSS alone -> dense 8 -> dense D
  (the paper's "dense 8 and 2": the 2 = the RP estimate (x, y)); ĉ1 = its estimate from the real
  sample, ĉ2 from the generated one.
- U-Net denoiser (the baseline of ref. [29]; incomplete samples read as noisy ones): channels
  [incomplete RSS, mask] (the RP too when `use_rp`) -> Conv1D 16 -> Conv1D 32 -> average-pool 2 ->
  Conv1D 64 -> upsample 2 -> concat skip -> Conv1D 32 -> Conv1D 16 -> Conv1D 1: the complete vector.
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
    def __call__(
        self, rss: jax.Array, mask: jax.Array, rp: jax.Array, prior: jax.Array | None = None
    ) -> jax.Array:
        observed = rss * mask if prior is None else rss * mask + (1.0 - mask) * prior
        h = ConvTrunk(self.filters, self.kernel, name="trunk")(_with_rp([observed, mask], rp))
        h = nn.relu(nn.Dense(self.dense, name="features")(h))
        return nn.Dense(rss.shape[-1], name="out")(h)


class NoiseGenerator(nn.Module):
    """cGAN [11]: noise and the RP in, a complete vector out (`rss` gives only the shape)."""

    filters: Sequence[int] = (16, 64, 128, 64, 16)
    dense: int = 96
    kernel: int = 3

    @nn.compact
    def __call__(
        self, rss: jax.Array, mask: jax.Array, rp: jax.Array, prior: jax.Array | None = None
    ) -> jax.Array:
        del mask, prior  # [11]'s generator sees no measurement
        z = jax.random.normal(self.make_rng("noise"), rss.shape, rss.dtype)
        h = ConvTrunk(self.filters, self.kernel, name="trunk")(_with_rp([z], rp))
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


class ConvLayer(nn.Module):
    """PatchConv1D + leaky ReLU 0.2."""

    features: int
    kernel: int = 3

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return nn.leaky_relu(PatchConv1D(self.features, self.kernel, name="conv")(x), 0.2)


class UNet1D(nn.Module):
    """A two-level 1-D U-Net over the RU axis (odd lengths padded by one before pooling)."""

    use_rp: bool = False
    kernel: int = 3

    @nn.compact
    def __call__(self, rss: jax.Array, mask: jax.Array, rp: jax.Array) -> jax.Array:
        length = rss.shape[1]
        x = _with_rp([rss * mask, mask], rp if self.use_rp else None)
        down = ConvLayer(16, self.kernel, name="down0")(x)
        down = ConvLayer(32, self.kernel, name="down1")(down)
        padded = jnp.pad(down, ((0, 0), (0, length % 2), (0, 0)), mode="edge")
        pooled = padded.reshape(padded.shape[0], -1, 2, padded.shape[-1]).mean(2)
        bottom = ConvLayer(64, self.kernel, name="bottom")(pooled)
        up = jnp.repeat(bottom, 2, axis=1)[:, :length]
        h = ConvLayer(32, self.kernel, name="up1")(jnp.concatenate([up, down], -1))
        h = ConvLayer(16, self.kernel, name="up0")(h)
        return PatchConv1D(1, self.kernel, name="out")(h)[..., 0]


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

"""The CSI pipeline: angle-delay transform, timing advance and AWGN per batch with explicit keys,
and labelled/unlabelled/test splits (sector rotation is `jaxfp.common.geometry.rotate_xy`).

CSI arrays are (..., ue_antennas, bs_antennas, subcarriers) complex64, as `jaxfp.data.csi_store` keeps
them. Choices where the paper is silent: the angle domain is a DFT over the 32 BS ports (both
polarisations together, as the paper's 2-D DFT), the delay domain an inverse DFT over subcarriers;
AWGN's SNR is relative to each sample's mean CSI power; labelled receivers are drawn with a density
that varies smoothly over space (`unevenness` 0 = uniform) to mimic the paper's uneven anchors.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def angle_delay(csi: jax.Array, crop_taps: int | None = None) -> jax.Array:
    """Antenna-frequency -> angle-delay (DFT over BS antennas, inverse DFT over subcarriers).

    With a crop, the kept taps come from a matrix product with the first `crop_taps` columns of
    the inverse DFT: the same numbers as the FFT then the crop, several times faster on CPU for
    the paper's 408 subcarriers cropped to tens of taps.
    """
    subcarriers = csi.shape[-1]
    if not crop_taps or crop_taps >= subcarriers:
        return jnp.fft.ifft(jnp.fft.fft(csi, axis=-2), axis=-1)
    # Integer phase indices modulo N keep the float32 twiddles exact to rounding.
    f = (np.arange(subcarriers)[:, None] * np.arange(crop_taps)[None, :]) % subcarriers
    inverse_dft = (np.exp(2j * np.pi * f / subcarriers) / subcarriers).astype(csi.dtype)
    # The two transforms commute; cropping first leaves the antenna FFT a fraction of the data.
    out = jnp.einsum("...f,ft->...t", csi, inverse_dft, precision=jax.lax.Precision.HIGHEST)
    return jnp.fft.fft(out, axis=-2)


def inverse_angle_delay(x: jax.Array) -> jax.Array:
    """Angle-delay -> antenna-frequency (uncropped input)."""
    return jnp.fft.ifft(jnp.fft.fft(x, axis=-1), axis=-2)


def timing_advance(
    csi: jax.Array, key: jax.Array, max_delay_s: float, spacing_hz: float
) -> jax.Array:
    """A random delay per sample, U(0, max_delay_s): a linear phase ramp across subcarriers."""
    delay = jax.random.uniform(key, csi.shape[:1], minval=0.0, maxval=max_delay_s)
    freq = jnp.arange(csi.shape[-1]) * spacing_hz
    ramp = jnp.exp(-2j * jnp.pi * delay[:, None] * freq[None, :]).astype(csi.dtype)
    return csi * ramp.reshape(csi.shape[:1] + (1,) * (csi.ndim - 2) + csi.shape[-1:])


def awgn(csi: jax.Array, key: jax.Array, snr_db: float) -> jax.Array:
    """Complex Gaussian noise at `snr_db` below each sample's mean CSI power."""
    axes = tuple(range(1, csi.ndim))
    power = jnp.mean(jnp.abs(csi) ** 2, axis=axes, keepdims=True)
    std = jnp.sqrt(power / 10 ** (snr_db / 10) / 2)
    re_key, im_key = jax.random.split(key)
    noise = jax.random.normal(re_key, csi.shape) + 1j * jax.random.normal(im_key, csi.shape)
    return csi + (std * noise).astype(csi.dtype)


def awgn_angle_delay(x: jax.Array, csi: jax.Array, key: jax.Array, snr_db: float) -> jax.Array:
    """`awgn(csi)` seen in the angle-delay domain, drawn on the taps of `x = angle_delay(csi, crop)`.

    White noise stays white under the two DFTs, its variance scaled by antennas / subcarriers,
    so only the random numbers that survive the crop are drawn.
    """
    power = jnp.mean(jnp.abs(csi) ** 2, axis=tuple(range(1, csi.ndim)), keepdims=True)
    scale = csi.shape[-2] / csi.shape[-1]
    std = jnp.sqrt(power / 10 ** (snr_db / 10) / 2 * scale)
    re_key, im_key = jax.random.split(key)
    noise = jax.random.normal(re_key, x.shape) + 1j * jax.random.normal(im_key, x.shape)
    return x + (std * noise).astype(x.dtype)


def to_channels(x: jax.Array) -> jax.Array:
    """complex (B, ue, bs, taps) -> float32 (B, 2 * ue, bs, taps): real parts, then imaginary."""
    return jnp.concatenate([x.real, x.imag], axis=1).astype(jnp.float32)


def preprocess(
    csi: jax.Array,
    key: jax.Array,
    snr_db: float | None,
    max_ta_s: float,
    spacing_hz: float,
    crop_taps: int | None,
) -> jax.Array:
    """Training input: TA and AWGN (when enabled), angle-delay, crop, unit RMS, real channels.

    The AWGN is drawn on the kept angle-delay taps (`awgn_angle_delay`), the same distribution
    as `awgn` before the transform.
    """
    ta_key, noise_key = jax.random.split(key)
    if max_ta_s > 0:
        csi = timing_advance(csi, ta_key, max_ta_s, spacing_hz)
    x = angle_delay(csi, crop_taps)
    if snr_db is not None:
        x = awgn_angle_delay(x, csi, noise_key, snr_db)
    rms = jnp.sqrt(jnp.mean(jnp.abs(x) ** 2, axis=(1, 2, 3), keepdims=True))
    return to_channels(x / jnp.maximum(rms, 1e-30))


def splits(
    xy: np.ndarray,
    labelled_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    unevenness: float = 3.0,
    blobs: int = 6,
    blob_radius_m: float = 25.0,
) -> dict[str, np.ndarray]:
    """Row indices {'labelled', 'unlabelled', 'test'}; test uniform, labelled with uneven density."""
    rng = np.random.default_rng(seed)
    n = len(xy)
    order = rng.permutation(n)
    n_test = int(round(test_fraction * n))
    test, rest = np.sort(order[:n_test]), order[n_test:]
    centers = xy[rng.choice(n, size=min(blobs, n), replace=False)]
    d2 = ((xy[rest, None, :] - centers[None]) ** 2).sum(-1)
    weight = 1.0 + unevenness * np.exp(-d2 / (2 * blob_radius_m**2)).sum(-1)
    n_lab = max(1, int(round(labelled_fraction * n)))
    labelled = rng.choice(rest, size=min(n_lab, len(rest)), replace=False, p=weight / weight.sum())
    return {
        "labelled": np.sort(labelled),
        "unlabelled": np.sort(np.setdiff1d(rest, labelled)),
        "test": test,
    }

"""The CSI pipeline: angle-delay transform, timing advance and AWGN per batch with explicit keys,
and labelled/unlabelled/test splits (sector rotation is `jaxfp.common.geometry.rotate_xy`).

CSI arrays are (..., ue_antennas, bs_antennas, subcarriers) complex64, as `jaxfp.data.csi_store` keeps
them. Choices where the paper is silent: the angle domain is a DFT over the 32 BS ports (both
polarisations together, as the paper's 2-D DFT), the delay domain an inverse DFT over subcarriers;
AWGN's SNR is relative to each sample's mean CSI power; labelled receivers are drawn with a density
that varies smoothly over space (`unevenness` 0 = uniform, the paper's random 10%) to mimic uneven
anchors; the log-power channel is the per-pixel power summed over UE antennas in dB, relative to a
data set's reference level, floored `dynamic_range_db` below it and divided by `scale_db`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

SPEED_OF_LIGHT_M_S = 299_792_458.0


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
    return delay_by(csi, delay, spacing_hz)


def delay_by(csi: jax.Array, delay_s: jax.Array, spacing_hz: float) -> jax.Array:
    """Each sample delayed by its `delay_s` (batch,): a linear phase ramp across subcarriers."""
    delay = jnp.broadcast_to(jnp.asarray(delay_s, jnp.float32), csi.shape[:1])
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


class LogPower(NamedTuple):
    """The log-power channel's scale: a reference level (dB of |x|^2), floor and divisor."""

    reference_db: float
    dynamic_range_db: float = 60.0
    scale_db: float = 20.0


def log_power_channel(x: jax.Array, scale: LogPower) -> jax.Array:
    """complex (B, ue, bs, taps) -> float32 (B, 1, bs, taps): the per-pixel power over UE antennas in
    dB relative to `scale.reference_db` (floored), so the sample's absolute level (the path-loss
    cue that unit-RMS scaling removes) stays in the input."""
    power = jnp.sum(jnp.abs(x) ** 2, axis=1, keepdims=True)
    floor = 10.0 ** ((scale.reference_db - scale.dynamic_range_db) / 10.0)
    db = 10.0 * jnp.log10(power + floor)
    return ((db - scale.reference_db) / scale.scale_db).astype(jnp.float32)


def preprocess(
    csi: jax.Array,
    key: jax.Array,
    snr_db: float | None,
    max_ta_s: float,
    spacing_hz: float,
    crop_taps: int | None,
    log_power: LogPower | None = None,
) -> jax.Array:
    """Training input: TA and AWGN (when enabled), angle-delay, crop, unit RMS, real channels, and
    with `log_power` one more channel of the unscaled per-pixel power in dB.

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
    out = to_channels(x / jnp.maximum(rms, 1e-30))
    if log_power is not None:
        out = jnp.concatenate([out, log_power_channel(x, log_power)], axis=1)
    return out


def ta_invariant_profile(csi: jax.Array, bins: int) -> jax.Array:
    """(B, ue, bs, subcarriers) -> (B, bs * bins) float32, unit norm: per angle bin, the magnitude of
    the Fourier transform of its delay amplitude profile (summed over UE antennas), first `bins`
    frequencies. A timing advance shifts every delay profile circularly and leaves this unchanged;
    the relative timing between angle bins is lost with it."""
    amplitude = jnp.sqrt(jnp.sum(jnp.abs(angle_delay(csi)) ** 2, axis=1))  # (B, bs, taps)
    spectrum = jnp.abs(jnp.fft.rfft(amplitude, axis=-1))[..., :bins]
    flat = spectrum.reshape(spectrum.shape[0], -1)
    return (flat / jnp.maximum(jnp.linalg.norm(flat, axis=-1, keepdims=True), 1e-30)).astype(
        jnp.float32
    )


def tap_duration_s(subcarriers: int, spacing_hz: float) -> float:
    """One delay tap of the angle-delay map: 1 / bandwidth."""
    return 1.0 / (subcarriers * spacing_hz)


def los_delay_s(xy: np.ndarray, ue_height_m: float, bs_position: tuple[float, ...]) -> np.ndarray:
    """Straight-line BS-receiver delay: the earliest any path can arrive (delays are absolute)."""
    d = np.hypot(
        np.hypot(xy[:, 0] - bs_position[0], xy[:, 1] - bs_position[1]),
        bs_position[2] - ue_height_m,
    )
    return d / SPEED_OF_LIGHT_M_S


def los_safe_crop(
    max_los_delay_s: float, max_ta_s: float, tap_s: float, margin_taps: int = 4, multiple: int = 8
) -> int:
    """The fewest delay taps (rounded up to `multiple`) that keep the LoS tap of a receiver
    `max_los_delay_s` away under the longest timing advance, with `margin_taps` for the tap's
    spread (a delay between two taps leaks into its neighbours)."""
    taps = math.ceil((max_los_delay_s + max_ta_s) / tap_s) + margin_taps
    return int(multiple * math.ceil(taps / multiple))


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

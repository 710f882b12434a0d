import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxfp.data import csi
from jaxfp.data.csi_store import CsiDataset, create_dataset, write_chunk


def random_csi(key, shape=(64, 2, 32, 408)):
    re, im = jax.random.normal(key, shape), jax.random.normal(jax.random.fold_in(key, 1), shape)
    return (re + 1j * im).astype(jnp.complex64)


def test_angle_delay_round_trip_and_sparsity():
    x = random_csi(jax.random.key(0), (4, 2, 32, 408))
    np.testing.assert_allclose(csi.inverse_angle_delay(csi.angle_delay(x)), x, atol=1e-5)
    assert csi.angle_delay(x, crop_taps=64).shape == (4, 2, 32, 64)
    # One plane wave: a single delay and a single angle bin.
    f, a = jnp.arange(408), jnp.arange(32)
    wave = jnp.exp(-2j * jnp.pi * (5 * f[None, :] / 408 - 3 * a[:, None] / 32))
    ad = jnp.abs(csi.angle_delay(wave[None, None]))[0, 0]
    assert tuple(np.unravel_index(int(jnp.argmax(ad)), ad.shape)) == (3, 5)
    assert float(ad.max() ** 2 / jnp.sum(ad**2)) > 0.99


def test_cropped_angle_delay_equals_the_fft_then_the_crop():
    x = random_csi(jax.random.key(5), (3, 2, 32, 408))
    full = jnp.fft.ifft(jnp.fft.fft(x, axis=-2), axis=-1)
    for taps in (8, 64):
        np.testing.assert_allclose(csi.angle_delay(x, taps), full[..., :taps], atol=2e-6)


def test_noise_on_the_kept_taps_matches_awgn_before_the_transform():
    """Same noise power per angle-delay tap as AWGN added per subcarrier, then transformed."""
    x = random_csi(jax.random.key(6), (256, 2, 32, 408))
    snr_db, taps = 10.0, 16
    clean = csi.angle_delay(x, taps)
    reference = jnp.var(csi.angle_delay(csi.awgn(x, jax.random.key(7), snr_db), taps) - clean)
    noise = csi.awgn_angle_delay(clean, x, jax.random.key(8), snr_db) - clean
    np.testing.assert_allclose(jnp.var(noise), reference, rtol=0.03)
    assert abs(float(jnp.mean(noise.real * noise.imag))) < 0.01 * float(jnp.var(noise))


def test_timing_advance_is_a_pure_phase_shift_of_the_delay_profile():
    x = random_csi(jax.random.key(1), (256, 1, 1, 408))
    shifted = csi.timing_advance(x, jax.random.key(2), max_delay_s=1e-6, spacing_hz=240e3)
    np.testing.assert_allclose(jnp.abs(shifted), jnp.abs(x), rtol=1e-5)
    # A delay of exactly k / (N * spacing) moves the delay profile by k taps.
    delta = 10 / (408 * 240e3)
    ramp = jnp.exp(-2j * jnp.pi * jnp.arange(408) * 240e3 * delta)
    impulse = jnp.zeros(408).at[7].set(1.0)
    freq = jnp.fft.fft(impulse)
    assert int(jnp.argmax(jnp.abs(jnp.fft.ifft(freq * ramp)))) == 17
    # Delays are uniform on [0, max): the phase step between subcarriers covers that range.
    step = jnp.angle(shifted[:, 0, 0, 1] / x[:, 0, 0, 1]) % (2 * jnp.pi)
    delays = (2 * jnp.pi - step) / (2 * jnp.pi * 240e3)
    assert 0.35e-6 < float(jnp.mean(delays)) < 0.65e-6


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 20.0])
def test_awgn_meets_the_snr(snr_db):
    x = random_csi(jax.random.key(3))
    noisy = csi.awgn(x, jax.random.key(4), snr_db)
    noise = noisy - x
    measured = 10 * np.log10(float(jnp.mean(jnp.abs(x) ** 2) / jnp.mean(jnp.abs(noise) ** 2)))
    assert abs(measured - snr_db) < 0.1
    assert abs(float(jnp.mean(noise.real * noise.imag))) < 0.01 * float(
        jnp.mean(jnp.abs(noise) ** 2)
    )
    again = csi.awgn(x, jax.random.key(4), snr_db)
    np.testing.assert_array_equal(noisy, again)


def test_splits_are_disjoint_and_uneven():
    g = np.stack(np.meshgrid(np.arange(100.0), np.arange(100.0)), -1).reshape(-1, 2)
    parts = csi.splits(g, labelled_fraction=0.1, test_fraction=0.1, seed=0, unevenness=5.0)
    total = np.concatenate(list(parts.values()))
    assert len(total) == len(g) == len(np.unique(total))
    assert len(parts["labelled"]) == 1000 and len(parts["test"]) == 1000

    def spread(unevenness: float) -> float:
        """Mean coefficient of variation of labelled counts over 5 x 5 cells, over seeds."""
        cvs = []
        for seed in range(4):
            lab = csi.splits(g, seed=seed, unevenness=unevenness)["labelled"]
            counts, _, _ = np.histogram2d(*g[lab].T, bins=5)
            cvs.append(counts.std() / counts.mean())
        return float(np.mean(cvs))

    assert spread(5.0) > 2 * spread(0.0)


@pytest.fixture
def tiny_store(tmp_path):
    header = create_dataset(str(tmp_path), {"tiny": 1}, 25, 10, (2, 4, 8))
    rng = np.random.default_rng(0)
    for chunk in range(3):
        rows = np.arange(chunk * 10, min(chunk * 10 + 10, 25))
        write_chunk(
            str(tmp_path),
            chunk,
            {
                "csi": (
                    rng.normal(size=(len(rows), 2, 4, 8)) + 1j * rows[:, None, None, None]
                ).astype(np.complex64),
                "xy": np.column_stack([rows, -rows]).astype(float),
                "los": rows % 2 == 0,
                "sector": rows % 3,
                "num_paths": np.full(len(rows), 3),
                "rx_index": rows,
            },
            header,
        )
    return CsiDataset(str(tmp_path))


def test_preprocess_gives_finite_real_channels(tiny_store):
    x = csi.preprocess(
        jnp.asarray(tiny_store.csi(np.arange(8))),
        jax.random.key(0),
        snr_db=20.0,
        max_ta_s=0.5e-6,
        spacing_hz=240e3,
        crop_taps=4,
    )
    assert x.shape == (8, 4, 4, 4) and x.dtype == jnp.float32 and bool(jnp.isfinite(x).all())


def test_preprocess_by_value_unit_rms_channel_order_and_log_power():
    """Two angle-delay pixels: UE 0 at (angle 2, tap 5) = 3, UE 1 at (angle 7, tap 1) = 4j."""
    pixels = np.zeros((1, 2, 32, 16), np.complex64)
    pixels[0, 0, 2, 5], pixels[0, 1, 7, 1] = 3.0, 4.0j
    reference_db = 10 * np.log10(16.0)
    scale = csi.LogPower(reference_db, dynamic_range_db=60.0, scale_db=20.0)
    out = csi.preprocess(
        csi.inverse_angle_delay(jnp.asarray(pixels)),
        jax.random.key(0),
        snr_db=None,
        max_ta_s=0.0,
        spacing_hz=240e3,
        crop_taps=8,
        log_power=scale,
    )
    assert out.shape == (1, 5, 32, 8) and out.dtype == jnp.float32
    rms = np.sqrt((9.0 + 16.0) / (2 * 32 * 8))  # over the kept taps of both UE antennas
    expected = np.zeros((4, 32, 8))
    expected[0, 2, 5] = 3.0 / rms  # channels: real UE 0, real UE 1, imaginary UE 0, imaginary UE 1
    expected[3, 7, 1] = 4.0 / rms
    np.testing.assert_allclose(out[0, :4], expected, atol=1e-4)
    np.testing.assert_allclose(jnp.sum(out[0, :4] ** 2) / (2 * 32 * 8), 1.0, rtol=1e-5)
    # Log power: dB of the unscaled power summed over UE antennas, minus the reference, over
    # 20 dB; empty pixels sit at the floor, 60 dB below the reference.
    floor = 10 ** ((reference_db - 60.0) / 10)
    log_power = np.full((32, 8), -3.0)
    log_power[2, 5] = (10 * np.log10(9.0 + floor) - reference_db) / 20
    log_power[7, 1] = (10 * np.log10(16.0 + floor) - reference_db) / 20
    np.testing.assert_allclose(out[0, 4], log_power, atol=1e-4)


def test_the_ta_invariant_profile_ignores_an_integer_delay():
    x = random_csi(jax.random.key(9), (3, 2, 32, 64))
    spacing = 240e3
    tap = 1.0 / (64 * spacing)
    shifted = csi.delay_by(x, jnp.asarray([5 * tap, 11 * tap, 0.0]), spacing)
    # The delay profile itself moves by whole taps ...
    np.testing.assert_allclose(
        jnp.abs(csi.angle_delay(shifted))[0],
        jnp.roll(jnp.abs(csi.angle_delay(x))[0], 5, axis=-1),
        atol=1e-4,
    )
    # ... and the signature does not.
    profile, moved = csi.ta_invariant_profile(x, 8), csi.ta_invariant_profile(shifted, 8)
    assert profile.shape == (3, 32 * 8)
    np.testing.assert_allclose(moved, profile, atol=1e-5)
    np.testing.assert_allclose(jnp.linalg.norm(profile, axis=-1), 1.0, rtol=1e-5)
    # Another channel gives another signature (by far more than the tolerance above).
    assert float(jnp.linalg.norm(profile[0] - profile[1])) > 0.05

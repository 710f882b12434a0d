"""Real ray tracing at small size (datagen/config.py:test: 48 receivers, 2,000 rays)."""

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import datagen  # noqa: F401  (points Dr.Jit at LLVM 19 before sionna is imported)
from jaxfp.config import apply_overrides, load_config
from jaxfp.data.csi_store import CsiDataset, combine
from jaxfp.data.types import DataFormatError

from ..conftest import REPO

if importlib.util.find_spec("sionna") is None:
    pytest.skip("sionna-rt is not installed (pip install -e '.[datagen]')", allow_module_level=True)

CONFIG = str(REPO / "datagen" / "config.py") + ":test"


def config(*overrides):
    return apply_overrides(load_config(CONFIG), list(overrides))


def generate(out, *overrides, shard=(0, 1)):
    from datagen.generate import generate as run

    return run(config(*overrides), str(out), shard, progress=False)


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("etoile_small")
    summary = generate(out)
    return out, summary


def test_shapes_dtypes_and_summary(small_set):
    out, summary = small_set
    data = CsiDataset(str(out))
    n = len(data)
    assert n == summary["receivers_in_data_set"] == summary["receivers_traced"] == 48
    assert data.csi_shape == (2, 32, 408)
    csi = data.csi(np.arange(n))
    assert csi.dtype == np.complex64 and np.isfinite(csi).all()
    assert data.xy.dtype == np.float64 and data.los.dtype == bool and data.sector.dtype == np.int8
    assert set(np.unique(data.sector)) == {0, 2}
    assert (np.abs(csi[data.num_paths > 0]).max(axis=(1, 2, 3)) > 0).all()
    assert 0 < summary["los_share"] < 1 and summary["mean_paths"] > 1
    assert summary["bytes_written"] > n * 2 * 32 * 408 * 8
    np.testing.assert_array_equal(np.sort(data.rx_index), np.arange(n))
    data.verify()


def test_los_flags_agree_with_a_los_only_solve(small_set):
    from datagen.tracer import Tracer

    out, _ = small_set
    data = CsiDataset(str(out))
    tracer = Tracer(config())
    for sector in np.unique(data.sector):
        rows = np.flatnonzero(data.sector == sector)
        np.testing.assert_array_equal(tracer.los_only(data.xy[rows], int(sector)), data.los[rows])


def test_deterministic_across_runs(small_set, tmp_path):
    out, _ = small_set
    generate(tmp_path)
    a, b = CsiDataset(str(out)), CsiDataset(str(tmp_path))
    np.testing.assert_array_equal(a.csi(np.arange(len(a))), b.csi(np.arange(len(b))))
    np.testing.assert_array_equal(a.num_paths, b.num_paths)


def test_killed_run_resumes_to_the_same_data_set(small_set, tmp_path):
    out, _ = small_set
    proc = subprocess.Popen(
        [sys.executable, "-m", "datagen", "generate", "--out", str(tmp_path), "--config", CONFIG]
        + ["--quiet", "--config.chunk_size=4"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    chunks = tmp_path / "chunks"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if chunks.exists() and len([c for c in os.listdir(chunks) if c.startswith("chunk_")]) >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = [c for c in os.listdir(chunks) if c.startswith("chunk_")]
    assert 2 <= len(done) < 12, "the kill should land mid-way"
    with pytest.raises(DataFormatError, match="incomplete data set"):
        CsiDataset(str(tmp_path))
    summary = generate(tmp_path, "--config.chunk_size=4")
    assert summary["chunks_skipped_as_done"] == len(done)
    resumed, unbroken = CsiDataset(str(tmp_path)), CsiDataset(str(out))
    np.testing.assert_array_equal(resumed.rx_index, unbroken.rx_index)
    # Equal up to float32 rounding: the first receivers a fresh process traces can differ from the
    # unbroken run's in the last bits (seen once in CI: 2.6% of entries, relative 7e-6), as Dr.Jit's
    # LLVM kernels are compiled anew; every receiver, path and chunk boundary is the same.
    np.testing.assert_allclose(
        resumed.csi(np.arange(48)), unbroken.csi(np.arange(48)), rtol=1e-5, atol=1e-11
    )
    np.testing.assert_array_equal(resumed.num_paths, unbroken.num_paths)
    np.testing.assert_array_equal(resumed.los, unbroken.los)
    assert not [c for c in os.listdir(chunks) if ".tmp" in c]


def test_shards_combine_without_copying(small_set, tmp_path):
    out, _ = small_set
    first = generate(tmp_path / "machine_a", shard=(0, 2))
    second = generate(tmp_path / "machine_b", shard=(1, 2))
    assert first["receivers_traced"] + second["receivers_traced"] == 48
    with pytest.raises(DataFormatError, match="incomplete"):
        CsiDataset(str(tmp_path / "machine_a"))
    combine(str(tmp_path / "all"), [str(tmp_path / "machine_a"), str(tmp_path / "machine_b")])
    combined, unbroken = CsiDataset(str(tmp_path / "all")), CsiDataset(str(out))
    np.testing.assert_array_equal(combined.csi(np.arange(48)), unbroken.csi(np.arange(48)))
    assert not (tmp_path / "all" / "chunks").exists()
    with pytest.raises(DataFormatError, match="appears twice"):
        combine(str(tmp_path / "dup"), [str(tmp_path / "machine_a"), str(tmp_path / "machine_a")])
    assert not (tmp_path / "dup" / "dataset.json").exists()


def test_corrupt_and_foreign_chunks_are_named(small_set, tmp_path):
    out, _ = small_set
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    target = copy / "chunks" / "chunk_000002" / "csi.npy"
    raw = bytearray(target.read_bytes())
    raw[-100:] = b"\xff" * 100
    target.write_bytes(bytes(raw))
    with pytest.raises(DataFormatError, match=r"chunk_000002/csi.npy: corrupt"):
        CsiDataset(str(copy)).verify()
    other = tmp_path / "other"
    generate(other, "--config.max_depth=1")
    shutil.rmtree(copy / "chunks" / "chunk_000003")
    shutil.copytree(other / "chunks" / "chunk_000003", copy / "chunks" / "chunk_000003")
    with pytest.raises(DataFormatError, match=r"chunk_000003: foreign chunk"):
        CsiDataset(str(copy))
    with pytest.raises(DataFormatError, match="another config"):
        generate(copy, "--config.max_depth=1")


def test_a_batch_near_the_path_cap_is_split_not_truncated(small_set, tmp_path):
    out, _ = small_set
    summary = generate(tmp_path, "--config.max_num_paths_per_src=1000", "--config.cap_fraction=0.5")
    assert summary["batches_split"] > 0
    # The cap is part of the config, so compare arrays rather than data sets.
    capped, unbroken = CsiDataset(str(tmp_path)), CsiDataset(str(out))
    np.testing.assert_allclose(
        capped.csi(np.arange(48)), unbroken.csi(np.arange(48)), rtol=1e-5, atol=1e-12
    )
    np.testing.assert_array_equal(capped.num_paths, unbroken.num_paths)


def test_cli_rejects_a_bad_shard(tmp_path):
    from datagen.cli import main

    assert main(["generate", "--out", str(tmp_path), "--shard", "3/2", "--config", CONFIG]) == 2


def test_spot_check_detects_paths_dropped_by_sionnas_hash_table():
    """The paper setting with a 1e6-slot table and 100-receiver batches drops a few paths; the spot
    check catches it and returns the complete result."""
    from datagen.grid import receivers
    from datagen.tracer import Tracer

    base = load_config(str(REPO / "datagen" / "config.py"))
    cfg = apply_overrides(
        base, ["--config.max_num_paths_per_src=1000000", "--config.spot_check_batch=10"]
    )
    tracer = Tracer(cfg)
    xy, sector = receivers(
        cfg.region, 1.0, cfg.bs_position[:2], cfg.sector_azimuths_deg, tracer.is_outdoor
    )
    batch = xy[sector == 0][:200]
    checked = np.concatenate(
        [tracer.trace(batch[i : i + 100], 0, spot_check=True)["num_paths"] for i in (0, 100)]
    )
    plain = np.concatenate([tracer.trace(batch[i : i + 100], 0)["num_paths"] for i in (0, 100)])
    assert tracer.spot_checks == 2 and tracer.spot_check_mismatches >= 1
    assert checked.sum() > plain.sum()
    small = np.concatenate(
        [tracer.trace(batch[i : i + 10], 0)["num_paths"] for i in range(0, 200, 10)]
    )
    np.testing.assert_array_equal(checked, small)


def test_the_los_safe_crop_keeps_every_los_tap_of_traced_receivers(small_set):
    """The crop/TA pairing of the CSI experiments on real traced receivers: under the longest
    timing advance, each LoS receiver's strongest delay tap (its LoS path) stays inside the
    LoS-safe crop, and an explicit crop that would cut it is refused."""
    import jax.numpy as jnp

    from jaxfp.config import ConfigError
    from jaxfp.data.csi import angle_delay, delay_by
    from jaxfp.methods.csi.data import crop_for

    out, _ = small_set
    data = CsiDataset(str(out))
    spacing = data.config["subcarrier_spacing_hz"] * data.config["srs_comb"]
    longest_ta_s = 0.2e-6  # the few-label configs' strong view: 0.1 us x 2
    crop = crop_for(data, 0, longest_ta_s, spacing)
    los = np.flatnonzero(data.los & (data.num_paths > 0))
    assert len(los) > 10
    csi = jnp.asarray(data.csi(los))
    for delay_s in (0.0, longest_ta_s):
        power = np.asarray(jnp.sum(jnp.abs(angle_delay(delay_by(csi, delay_s, spacing))) ** 2, 1))
        strongest_tap = power.max(axis=1).argmax(axis=-1)
        assert strongest_tap.max() < crop, (delay_s, strongest_tap.max(), crop)
        if delay_s:  # these receivers are far enough that a 32-tap crop would cut them
            assert strongest_tap.max() >= 32
    with pytest.raises(ConfigError, match="crop_taps=32 cuts the LoS tap"):
        crop_for(data, 32, longest_ta_s, spacing)
    assert crop_for(data, crop + 8, longest_ta_s, spacing) == crop + 8

"""The CSI experiments' data: each seed's split, the in-memory CSI table, the site and the input
settings read from the data set.

A seed is one replicate of the protocol's random draws. The ray-traced receivers and their
positions are fixed (one traced world), so what a seed varies is the split: its own held-out test
receivers and its own labelled subset (`named_int(seed, "split")`). All seeds' rows live in one
table, read once; each seed's parts are index arrays into it of equal sizes, so stacked seeds keep
rectangular shapes. The log-power reference is one number per data set (from a sample's CSI).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxfp.common.chunks import map_chunks
from jaxfp.common.geometry import SiteFrame
from jaxfp.config import ConfigError
from jaxfp.data.csi import (
    LogPower,
    angle_delay,
    los_delay_s,
    los_safe_crop,
    preprocess,
    splits,
    tap_duration_s,
)
from jaxfp.data.csi_store import CsiDataset
from jaxfp.data.types import DataFormatError
from jaxfp.train.keys import named_int, named_seed

PARTS = ("labelled", "unlabelled", "test")
Prep = Callable[[jax.Array, jax.Array], jax.Array]
SAMPLINGS = {"uneven": 3.0, "uniform": 0.0}  # data.labelled_sampling -> splits' unevenness


class CsiTable(NamedTuple):
    """The rows every seed may touch, in data-set order: CSI, true positions (targets of labelled
    rows; for other rows diagnostics and scores only), serving sectors, data-set row ids."""

    csi: np.ndarray
    xy: np.ndarray
    sector: np.ndarray
    rows: np.ndarray


def usable_rows(dataset: CsiDataset, drop_pathless: bool) -> np.ndarray:
    """Receivers a split may draw: all, or those with at least one traced path."""
    return np.flatnonzero(dataset.num_paths > 0) if drop_pathless else np.arange(len(dataset))


def seed_splits(
    xy: np.ndarray, usable: np.ndarray, seeds: tuple[int, ...], data: ml_collections.ConfigDict
) -> dict[str, np.ndarray]:
    """{part: (seeds, rows) data-set row ids}: each seed's own labelled / unlabelled / test draw
    over the usable receivers (every seed's parts have the same sizes)."""
    sampling = data.get("labelled_sampling", "uneven")
    if sampling not in SAMPLINGS:
        raise ConfigError(
            f"data.labelled_sampling: expected one of {tuple(SAMPLINGS)}, got {sampling!r}"
        )
    per_seed = [
        splits(
            xy[usable],
            data.labelled_fraction,
            data.test_fraction,
            named_int(seed, "split"),
            unevenness=SAMPLINGS[sampling],
        )
        for seed in seeds
    ]
    return {name: np.stack([usable[p[name]] for p in per_seed]) for name in PARTS}


def load_table(dataset: CsiDataset, rows: np.ndarray) -> CsiTable:
    """The CSI, positions and sectors of `rows` (data-set row ids, sorted, unique)."""
    rows = np.unique(rows)
    return CsiTable(
        csi=dataset.csi(rows),
        xy=dataset.xy[rows].astype(np.float64),
        sector=dataset.sector[rows].astype(np.int32),
        rows=rows,
    )


def table_index(table: CsiTable, rows: np.ndarray) -> np.ndarray:
    """Data-set row ids -> positions in `table` (every id must be in the table)."""
    index = np.searchsorted(table.rows, rows)
    if index.size and (index.max() >= len(table.rows) or (table.rows[index] != rows).any()):
        raise ValueError("table_index: rows outside the loaded table")
    return index


def site_frame(dataset: CsiDataset, scale_m: float) -> SiteFrame:
    """The BS position and sector boresights from the data set's header (datagen wrote them)."""
    missing = [k for k in ("bs_position", "sector_azimuths_deg") if k not in dataset.config]
    if missing:
        raise DataFormatError(
            f"{dataset.root}/dataset.json: config lacks {missing}; expected the site's "
            "bs_position (x, y, z) and sector_azimuths_deg, as datagen writes them"
        )
    bs = dataset.config["bs_position"]
    azimuths = dataset.config["sector_azimuths_deg"]
    return SiteFrame(
        (float(bs[0]), float(bs[1])), float(scale_m), tuple(math.radians(a) for a in azimuths)
    )


def crop_for(dataset: CsiDataset, crop_taps: int, longest_ta_s: float, spacing_hz: float) -> int:
    """`crop_taps`, or with 0 the fewest taps that keep every receiver's LoS tap under the longest
    timing advance (`los_safe_crop`). An explicit crop that would cut some receiver's LoS tap is an
    error. Data sets without the receiver height (not traced by datagen) keep the crop unchecked."""
    subcarriers = dataset.csi_shape[-1]
    tap_s = tap_duration_s(subcarriers, spacing_hz)
    if "ue_height" not in dataset.config:
        if not crop_taps:
            raise ConfigError(
                f"preprocess.crop_taps=0 (LoS-safe crop) needs ue_height in {dataset.root}"
                "/dataset.json to place each receiver's LoS tap; set preprocess.crop_taps"
            )
        return int(crop_taps)
    bs = tuple(float(v) for v in dataset.config["bs_position"])
    farthest_s = float(los_delay_s(dataset.xy, float(dataset.config["ue_height"]), bs).max())
    needed = los_safe_crop(farthest_s, longest_ta_s, tap_s)
    if not crop_taps:
        return min(needed, subcarriers)
    if crop_taps < needed:
        raise ConfigError(
            f"preprocess.crop_taps={crop_taps} cuts the LoS tap of receivers in {dataset.root}: the "
            f"farthest LoS path arrives after {farthest_s * 1e9:.0f} ns, plus {longest_ta_s * 1e9:.0f}"
            f" ns of timing advance, needs {needed} taps of {tap_s * 1e9:.1f} ns; set 0 (LoS-safe) "
            "or a shorter max_ta_s"
        )
    return int(crop_taps)


def reference_level_db(csi: np.ndarray, crop_taps: int, chunk: int = 256) -> float:
    """The log-power channel's reference: the median over `csi` rows of their strongest pixel
    (dB of |x|^2 summed over UE antennas, clean CSI)."""

    @jax.jit
    def peak_db(block: jax.Array) -> jax.Array:
        power = jnp.sum(jnp.abs(angle_delay(block, crop_taps)) ** 2, axis=1)
        return 10.0 * jnp.log10(jnp.max(power, axis=(1, 2)) + 1e-30)

    peaks = map_chunks(lambda block, _: peak_db(jnp.asarray(block)), csi, chunk)
    return float(np.median(peaks))


def reference_sample(usable: np.ndarray, seed: int, size: int) -> np.ndarray:
    """The receivers whose CSI (never positions) sets the log-power reference: one sample per data
    set and config seed, so every seed and every protocol shares one input scale."""
    rng = np.random.default_rng(named_seed(seed, "log_power_reference"))
    return np.sort(rng.choice(usable, size=min(size, len(usable)), replace=False))


def preprocessors(
    p: ml_collections.ConfigDict, spacing_hz: float, crop_taps: int, log_power: LogPower | None
) -> tuple[Prep, Prep]:
    """(weak, strong) `prep(csi, key)`: random timing advance U(0, p.max_ta_s) and AWGN at
    p.snr_db on the CSI, the angle-delay map (2-D DFT) cropped to `crop_taps`, unit RMS, real
    channels and the log-power channel (`jaxfp.data.csi.preprocess`). The strong view, FixMatch's
    strong augmentation, has `strong_snr_drop_db` less SNR and `strong_ta_factor` times the TA."""

    def weak(csi: jax.Array, key: jax.Array) -> jax.Array:
        return preprocess(csi, key, p.snr_db, p.max_ta_s, spacing_hz, crop_taps, log_power)

    def strong(csi: jax.Array, key: jax.Array) -> jax.Array:
        snr_db = p.snr_db - p.strong_snr_drop_db
        ta_s = p.max_ta_s * p.strong_ta_factor
        return preprocess(csi, key, snr_db, ta_s, spacing_hz, crop_taps, log_power)

    return weak, strong

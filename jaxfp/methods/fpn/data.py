"""FPN's data: a period's scans on the networks' scale, walks through them, each point's scans
split into training and validation pools, and one seed's draw of the synthetic experiment.

Every random draw is named after its seed and what it is for. On the synthetic world a seed is a
whole replicate: its own world, its own moved APs, its own surveys (map, training, test), its own
walk-scan noise and walks. On a real set the scans are fixed, so a seed varies what the protocol
draws at random: each point's validation split, the training, validation and test walks, and the
initialisation.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import ml_collections
import numpy as np

from jaxfp.config import ConfigError
from jaxfp.data.longterm import floor_outlier_scans
from jaxfp.data.places import ReferencePoints, floor_code
from jaxfp.data.registry import load_parts
from jaxfp.data.synthetic import WorldParams, make_world, relocate_aps, survey
from jaxfp.data.types import RSS_MAX_DBM, RSS_MIN_DBM, FingerprintSet
from jaxfp.methods.fpn.radio_map import radio_map, received_dbm, to_unit
from jaxfp.methods.fpn.walks import ScanPool, Walker
from jaxfp.train.keys import named_int, named_seed

PERIODS = ("before", "after")  # the synthetic world before and after the APs move


class Scans(NamedTuple):
    """A period's scans as FPN sees them."""

    signals: np.ndarray  # (n, L) unit scale
    xy: np.ndarray  # (n, 2)
    floor: np.ndarray  # (n,) floor code
    point: np.ndarray  # (n,) reference point, -1 elsewhere


class Walks(NamedTuple):
    """Walks through a set of scans: `rows` (W, T) index the scans."""

    scans: Scans
    rows: np.ndarray

    def batch(self, radio_map: np.ndarray) -> dict[str, np.ndarray]:
        return {
            "signals": self.scans.signals[self.rows],
            "point": self.scans.point[self.rows],
            "map": radio_map,
        }


class RadioMapRule(NamedTuple):
    """§3.2.2's rule: below `threshold_dbm` is not received and reads `missing_dbm`."""

    threshold_dbm: float
    missing_dbm: float

    @classmethod
    def from_config(cls, section: ml_collections.ConfigDict) -> RadioMapRule:
        return cls(float(section.threshold_dbm), float(section.missing_dbm))


def unit_map(
    fs: FingerprintSet,
    points: ReferencePoints,
    rule: RadioMapRule,
    previous: np.ndarray | None = None,
) -> np.ndarray:
    """The unit-scale radio map (R, L) of `fs`; points without scans keep `previous`'s rows (an
    error where there is no previous map)."""
    dbm, counts = radio_map(fs, points, rule.threshold_dbm, rule.missing_dbm)
    unit = to_unit(dbm, rule.missing_dbm)
    if previous is not None:
        unit[counts == 0] = previous[counts == 0]
    elif (counts == 0).any():
        raise ConfigError(f"{fs.source}: {int((counts == 0).sum())} reference points lack scans")
    return unit


def scans_of(fs: FingerprintSet, points: ReferencePoints, rule: RadioMapRule) -> Scans:
    """`fs` on the unit scale, at its reference points."""
    dbm = received_dbm(fs.rss, fs.detected, rule.threshold_dbm, rule.missing_dbm)
    return Scans(to_unit(dbm, rule.missing_dbm), fs.xy, floor_code(fs), points.locate(fs))


def walks_over(
    scans: Scans, count: int, length: int, walk: ml_collections.ConfigDict, seed: int | list[int]
) -> Walks:
    """`count` walks (as `walk` says) over the places of `scans` (any places: test scans need not
    be at reference points), one scan of the visited place per step."""
    keys = np.c_[np.round(scans.xy, 3), scans.floor]
    places, place = np.unique(keys, axis=0, return_inverse=True)
    rng = np.random.default_rng(seed)
    path = Walker(walk, places[:, :2], places[:, 2]).draw(count, length, rng)
    return Walks(scans, ScanPool(place.reshape(-1), len(places)).draw(path, rng))


def split_pools(
    scans: Scans, n_points: int, fraction: float, seed: int | list[int]
) -> tuple[ScanPool, ScanPool]:
    """Each point's scans split (1 − f) / f into training and validation pools."""
    rng = np.random.default_rng(seed)
    val = np.zeros(len(scans.point), bool)
    for p in range(n_points):
        rows = rng.permutation(np.flatnonzero(scans.point == p))
        val[rows[: int(round(fraction * len(rows)))]] = True
    return ScanPool(np.where(val, -1, scans.point), n_points), ScanPool(
        np.where(val, scans.point, -1), n_points
    )


class ScanNoise(NamedTuple):
    """Walk-scan noise on top of the world's own: Gaussian `noise_db` on each detected reading,
    and each detected reading lost (not received) with probability `dropout`."""

    noise_db: float
    dropout: float = 0.0

    @classmethod
    def from_config(cls, section: ml_collections.ConfigDict, where: str) -> ScanNoise:
        """From a config section with `noise_db` and `dropout`; `where` names it in errors."""
        noise = cls(float(section.noise_db), float(section.get("dropout", 0.0)))
        if noise.noise_db < 0:
            raise ConfigError(f"{where}.noise_db: expected >= 0, got {noise.noise_db}")
        if not 0 <= noise.dropout < 1:
            raise ConfigError(
                f"{where}.dropout: expected a probability in [0, 1), got {noise.dropout}"
            )
        return noise


def with_noise(
    fs: FingerprintSet, noise: ScanNoise | float, seed: int | list[int]
) -> FingerprintSet:
    """`fs` with `noise` (a `ScanNoise`, or a Gaussian std in dB) on its detected readings."""
    noise = noise if isinstance(noise, ScanNoise) else ScanNoise(float(noise))
    if noise.noise_db <= 0 and noise.dropout <= 0:
        return fs
    rng = np.random.default_rng(seed)
    gauss = noise.noise_db * rng.standard_normal(fs.rss.shape)
    rss = np.clip(fs.rss + gauss, RSS_MIN_DBM, RSS_MAX_DBM).astype(np.float32)  # NaN stays NaN
    if noise.dropout <= 0:
        return dataclasses.replace(fs, rss=rss)
    detected = fs.detected & (rng.random(fs.rss.shape) >= noise.dropout)
    rss = np.where(detected, rss, np.nan).astype(np.float32)
    return dataclasses.replace(fs, rss=rss, detected=detected)


def synthetic_draw(
    s: ml_collections.ConfigDict, noise: ScanNoise | float, seed: int
) -> dict[str, dict[str, FingerprintSet]]:
    """Seed `seed`'s replicate of the synthetic experiment: per period ("before", "after" the
    `moved_aps` move) the map survey, the training scans and the test scans, the last two with
    walk-scan `noise` (a `ScanNoise` or a Gaussian std in dB). The world, surveys and noise draws
    are named by seed alone, so two noise regimes of a seed share the world and the scans' places
    and fading."""
    before = make_world(WorldParams.from_mapping(s), named_int(seed, "world"))
    worlds = {"before": before, "after": relocate_aps(before, s.moved_aps, named_int(seed, "move"))}

    def scans(period: str, kind: str, per_rp: int) -> FingerprintSet:
        fs = survey(worlds[period], per_rp, named_int(seed, period, "survey", kind))
        return (
            fs if kind == "map" else with_noise(fs, noise, named_seed(seed, period, "noise", kind))
        )

    kinds = ("map", "train", "test")
    return {
        period: {kind: scans(period, kind, s[f"{kind}_scans_per_rp"]) for kind in kinds}
        for period in PERIODS
    }


def common_points(sets: list[FingerprintSet]) -> ReferencePoints:
    """The reference points of the first set, which every set must share (a replicate's world
    changes, its grid does not)."""
    points = ReferencePoints.of(sets[0])
    for fs in sets[1:]:
        other = ReferencePoints.of(fs)
        if not (np.array_equal(other.xy, points.xy) and np.array_equal(other.floor, points.floor)):
            raise ValueError(f"{fs.source}: the seeds' surveys do not share reference points")
    return points


FLOOR_OUTLIER_RULES = ("drop", "keep")


def load_month(
    d: ml_collections.ConfigDict, month: int, kind: str, reference: FingerprintSet | None = None
) -> FingerprintSet:
    """One month's `kind` scans ("trn" or "tst") of the long-term set, aligned to `reference`'s
    APs when given. `d.floor_outliers="drop"` drops the scans of floor-outlier places (a floor
    held by one x, y that other floors share: `jaxfp.data.longterm.floor_outlier_scans`), whose
    true floor and place are unknown; "keep" loads them as labelled."""
    rule = str(d.get("floor_outliers", "drop"))
    if rule not in FLOOR_OUTLIER_RULES:
        raise ConfigError(
            f"config.data.floor_outliers: expected one of {FLOOR_OUTLIER_RULES}, got {rule!r}"
        )
    fs = load_parts(d.path, [d.parts.format(month=month, kind=kind)], d.format)
    if rule == "drop":
        outliers = floor_outlier_scans(fs)
        if outliers.any():
            fs = fs.subset(np.flatnonzero(~outliers))
    return fs if reference is None else fs.aligned_to(reference)

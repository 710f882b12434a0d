"""ComGAN's data: RSS vectors over L radio units (RUs) at reference points (RPs), the paper's RP
split (RSS training / RSS testing / localization testing = 15 / 15 / 10), the standardisation, and
one seed's draw of all of it.

One line per choice:
- synthetic: the log-distance world of `jaxfp.data.synthetic` (eq. 1 with shadowing and Rayleigh
  fading) with the paper's geometry: 40 RPs 1 m apart (8 x 5) in a room, six RUs, every RU heard;
  each scan's body shadowing by heading and occupancy term are shared by its RUs
  (`synthetic.body_loss_db`, `synthetic.scan_common_db`), set so that the cross-RU predictability
  matches UJI month 1's (0.27); both 0 is the room whose RUs deviate independently.
- cross-RU predictability (`cross_ru_predictability`): per RU, the R² of an ordinary least-squares
  fit (with intercept) of its deviation from its RP's mean on the other RUs' deviations; the mean
  over RUs is the share of one RU's deviation the others predict.
- real sets: optionally one building's or floor's scans (`data.building`, `data.floor`); the
  `n_rus` APs detected in the most RP-mean fingerprints (ties: most detections); a reading the AP
  missed becomes `missing_dbm`; an RP is a position (and a floor height where the set has several
  floors, `floor_height_m` apart), so the RP coordinates have 2 or 3 entries; the scans' floor and
  building labels are kept for scoring (the synthetic room has none).
- the split draws whole RPs in the ratio 15 / 15 / 10 (rounded, at least one each).
- standardisation: per RU with the RSS-training samples' mean and spread; RP coordinates with the
  training RPs' mean and one spread for all axes (distances keep their shape).
- a seed's draw (`draws_for`): on the synthetic room its own world ("world") and survey noise
  ("survey"); on a real set (one fixed survey) its own RP split ("split"); on both, the split and, in
  the protocol, the measured RUs of each test sample. `data.per_seed_draw` False gives every seed the
  draw of `config.seed` (the seeds then vary the initialisation alone).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import ml_collections
import numpy as np

from jaxfp.config import ConfigError
from jaxfp.data.registry import load_parts
from jaxfp.data.synthetic import WorldParams, make_world, survey
from jaxfp.data.types import FingerprintSet
from jaxfp.train.keys import named_int, named_seed

PARTS = ("rss_train", "rss_test", "loc_test")


class RuSet(NamedTuple):
    """Samples (n, L) in dBm at RPs; `rp` indexes `rp_xy` (R, D); a real set's samples' floor and
    building labels (n,) where it has them."""

    rss: np.ndarray
    rp: np.ndarray
    rp_xy: np.ndarray
    ru_ids: np.ndarray
    source: str
    floor: np.ndarray | None = None
    building: np.ndarray | None = None

    def rows(self, rps: np.ndarray) -> np.ndarray:
        return np.flatnonzero(np.isin(self.rp, rps))


XY_SCALES = ("centred", "values")


class Scale(NamedTuple):
    """Standardisation of RSS (per RU) and RP coordinates, fitted on the RSS-training part."""

    rss_mean: np.ndarray
    rss_std: np.ndarray
    xy_mean: np.ndarray
    xy_std: float

    @classmethod
    def fit(cls, rss: np.ndarray, xy: np.ndarray, xy_scale: str = "centred") -> Scale:
        """`xy_scale`: "centred" divides the centred coordinates by their standard deviation;
        "values" by that of the coordinate values as they come, which mixes in the spread of the
        axes' means (on UTM coordinates, x ~ -7,300 m and y ~ 4.86e6 m, it is 2.4e6 m and every RP
        lands on one point)."""
        if xy_scale not in XY_SCALES:
            raise ConfigError(f"data.xy_scale: expected one of {XY_SCALES}, got {xy_scale!r}")
        spread = (xy - xy.mean(0)).std() if xy_scale == "centred" else xy.std()
        return cls(rss.mean(0), np.maximum(rss.std(0), 1e-6), xy.mean(0), max(float(spread), 1e-6))

    def rss_in(self, rss_dbm: np.ndarray) -> np.ndarray:
        return ((rss_dbm - self.rss_mean) / self.rss_std).astype(np.float32)

    def rss_out(self, rss: np.ndarray) -> np.ndarray:
        return np.asarray(rss, np.float64) * self.rss_std + self.rss_mean

    def xy_in(self, xy: np.ndarray) -> np.ndarray:
        return ((xy - self.xy_mean) / self.xy_std).astype(np.float32)

    def xy_out(self, xy: np.ndarray) -> np.ndarray:
        return np.asarray(xy, np.float64) * self.xy_std + self.xy_mean


class Draw(NamedTuple):
    """One seed's data: the RU set, its RP split and sample rows per part, the standardisation
    fitted on its RSS-training part, the standardised samples `x` (n, L) and their RPs `p` (n, D)."""

    ru: RuSet
    rps: dict[str, np.ndarray]
    rows: dict[str, np.ndarray]
    scale: Scale
    x: np.ndarray
    p: np.ndarray


def synthetic_set(s: ml_collections.ConfigDict, seed: int) -> RuSet:
    """The synthetic room of seed `seed`: its world and its survey noise, each from a named seed."""
    params = dataclasses.replace(
        WorldParams(),
        width_m=s.width_m,
        height_m=s.height_m,
        rp_spacing_m=s.rp_spacing_m,
        n_aps=s.n_rus,
        ap_power_dbm=s.ru_power_dbm,
        path_loss_exponent=s.path_loss_exponent,
        shadowing_db=s.shadowing_db,
        body_loss_db=s.body_loss_db,
        scan_common_db=s.scan_common_db,
        sensitivity_dbm=-130.0,  # every RU is heard everywhere in the room
    )
    world = make_world(params, named_int(seed, "world"))
    fs = survey(world, s.samples_per_rp, seed=named_int(seed, "survey"))
    shared = (
        f"per-scan body {s.body_loss_db:g} dB and occupancy {s.scan_common_db:g} dB across RUs"
        if s.body_loss_db or s.scan_common_db
        else "RUs deviating independently"
    )
    return _ru_set(fs, np.arange(s.n_rus), -130.0, 0.0, f"synthetic room ({shared})")


class Predictability(NamedTuple):
    """How much of one RU's deviation from its RP mean the other RUs predict."""

    mean_r2: float  # the mean over RUs of `per_ru`
    per_ru: np.ndarray  # (L,) R² of each RU's deviation regressed on the others'
    max_abs_corr: float  # the largest |correlation| between two RUs' deviations


def cross_ru_predictability(rss: np.ndarray, rp: np.ndarray) -> Predictability:
    """The cross-RU predictability of samples `rss` (n, L) at RP indices `rp` (n,): deviations
    from each RP's mean, then per RU the R² of a least-squares fit on the other RUs' deviations."""
    rss, rp = np.asarray(rss, np.float64), np.asarray(rp)
    if rss.ndim != 2 or rss.shape[1] < 2:
        raise ValueError(f"rss: expected (n, L) with L >= 2 RUs, got shape {rss.shape}")
    if rp.shape != (len(rss),):
        raise ValueError(f"rp: expected ({len(rss)},) RP indices, got shape {rp.shape}")
    _, rp = np.unique(rp, return_inverse=True)
    means = np.zeros((rp.max() + 1, rss.shape[1]))
    np.add.at(means, rp, rss)
    deviation = rss - means[rp] / np.bincount(rp)[rp, None]
    r2 = np.zeros(rss.shape[1])
    for ru in range(rss.shape[1]):
        target = deviation[:, ru]
        total = np.sum((target - target.mean()) ** 2)
        if total == 0:
            continue  # an RU that never deviates: nothing to predict
        others = np.c_[np.delete(deviation, ru, 1), np.ones(len(rss))]
        coef = np.linalg.lstsq(others, target, rcond=None)[0]
        r2[ru] = 1.0 - np.sum((target - others @ coef) ** 2) / total
    spread = deviation.std(0)
    live = spread > 0
    corr = np.corrcoef(deviation[:, live].T) if live.sum() > 1 else np.eye(1)
    off = np.abs(corr[~np.eye(len(corr), dtype=bool)])
    return Predictability(float(r2.mean()), r2, float(off.max()) if off.size else 0.0)


def real_set(fs: FingerprintSet, n_rus: int, missing_dbm: float, floor_height_m: float) -> RuSet:
    """The `n_rus` most consistently detected APs of `fs` as RUs."""
    rp_values, rp = np.unique(fs.rp_id, return_inverse=True)
    heard = np.zeros((len(rp_values), fs.n_aps))
    np.add.at(heard, rp, fs.detected)
    counts = np.bincount(rp, minlength=len(rp_values))[:, None]
    consistent = (heard >= 0.5 * counts).sum(0)  # RPs where the AP is heard in most scans
    order = np.lexsort((-fs.detected.sum(0), -consistent))
    ru = _ru_set(fs, np.sort(order[:n_rus]), missing_dbm, floor_height_m, fs.source)
    return ru._replace(floor=fs.floor, building=fs.building)


def _ru_set(
    fs: FingerprintSet, columns: np.ndarray, missing_dbm: float, floor_height_m: float, source: str
) -> RuSet:
    rss = np.where(fs.detected[:, columns], fs.rss[:, columns], missing_dbm).astype(np.float32)
    place = fs.xy
    if fs.floor is not None and len(np.unique(fs.floor)) > 1 and floor_height_m > 0:
        place = np.c_[fs.xy, floor_height_m * fs.floor]
    rp_xy, rp = np.unique(np.round(place, 3), axis=0, return_inverse=True)
    return RuSet(rss, rp.reshape(-1), rp_xy, fs.ap_ids[columns], source)


def place_subset(fs: FingerprintSet, building: int, floor: int) -> FingerprintSet:
    """The scans of one building and/or floor (-1: every one)."""
    keep = np.ones(fs.n, bool)
    for name, wanted in (("building", building), ("floor", floor)):
        if wanted < 0:
            continue
        labels = getattr(fs, name)
        if labels is None:
            raise ConfigError(f"config.data.{name}: {fs.source} has no {name} labels; expected -1")
        if not np.any(labels == wanted):
            raise ConfigError(
                f"config.data.{name}: expected one of {np.unique(labels).tolist()} or -1, "
                f"got {wanted}"
            )
        keep &= labels == wanted
    if not keep.any():
        raise ConfigError(f"config.data: no scans on building {building}, floor {floor}")
    if keep.all():
        return fs
    return fs.subset(
        np.flatnonzero(keep), source=f"{fs.source} (building {building}, floor {floor})"
    )


def load_ru_set(config: ml_collections.ConfigDict, seed: int | None = None) -> RuSet:
    """The RU set of `config.data`: a real set as loaded, or the synthetic room of `seed`
    (default `config.seed`)."""
    d = config.data
    if d.source == "synthetic":
        return synthetic_set(config.synthetic, config.seed if seed is None else seed)
    if d.source == "real":
        fs = load_parts(d.path, list(d.parts), d.format)
        return real_set(
            place_subset(fs, d.building, d.floor), d.n_rus, d.missing_dbm, d.floor_height_m
        )
    raise ConfigError(f"config.data.source: expected 'synthetic' or 'real', got {d.source!r}")


def split_rps(
    n_rps: int, ratios: tuple[float, ...], seed: int | list[int]
) -> dict[str, np.ndarray]:
    """Whole RPs into RSS training / RSS testing / localization testing in `ratios`."""
    ratios = np.asarray(ratios, np.float64) / np.sum(ratios)
    sizes = np.maximum(np.round(ratios * n_rps).astype(int), 1)
    sizes[0] = n_rps - sizes[1:].sum()
    if sizes[0] < 1:
        raise ValueError(f"{n_rps} RPs cannot be split in the ratio {tuple(ratios)}")
    order = np.random.default_rng(seed).permutation(n_rps)
    cuts = np.cumsum(sizes)[:-1]
    return {name: np.sort(part) for name, part in zip(PARTS, np.split(order, cuts), strict=True)}


def data_seed(config: ml_collections.ConfigDict, seed: int) -> int:
    """The seed whose data a run seed draws: itself, or `config.seed` for every run seed when
    `config.data.per_seed_draw` is False."""
    return int(seed) if config.data.per_seed_draw else int(config.seed)


def make_draw(ru: RuSet, ratios: tuple[float, ...], seed: int, xy_scale: str = "centred") -> Draw:
    """Seed `seed`'s RP split of `ru` and the arrays standardised on its RSS-training part."""
    rps = split_rps(len(ru.rp_xy), ratios, named_seed(seed, "split"))
    rows = {p: ru.rows(rps[p]) for p in PARTS}
    scale = Scale.fit(ru.rss[rows["rss_train"]], ru.rp_xy[rps["rss_train"]], xy_scale)
    return Draw(ru, rps, rows, scale, scale.rss_in(ru.rss), scale.xy_in(ru.rp_xy)[ru.rp])


def draws_for(config: ml_collections.ConfigDict, seeds: tuple[int, ...]) -> list[Draw]:
    """Each run seed's draw (a real set is loaded once; seeds that share a data seed share a draw)."""
    ratios = tuple(config.data.split)
    real = load_ru_set(config) if config.data.source == "real" else None
    made: dict[int, Draw] = {}
    for seed in seeds:
        ds = data_seed(config, seed)
        if ds not in made:
            ru = real if real is not None else load_ru_set(config, ds)
            made[ds] = make_draw(ru, ratios, ds, config.data.get("xy_scale", "centred"))
    return [made[data_seed(config, seed)] for seed in seeds]

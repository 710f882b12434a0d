"""The periods GUFU updates through, for one seed: months of the UJI long-term library set, or
weeks of a synthetic site with AP churn at GUFU's Table 5 rates; and the churn each period brings.

What a seed varies (each seed is one replicate of the whole experiment):
- synthetic: the world (APs, shadowing), the survey noise of the database and of every week's
  measurement, the weekly churn, and the batch's places and noise, each from a key named after
  it (`named_int(seed, "world")`, `named_int(seed, "survey", week)`, ...).
- `data.removed_ap_share` (GUFU's Fig. 19): that share of the APs the database detects, drawn by
  the seed, is taken out of the database only, so the batches bring them back as new APs.
- UJI months: the months themselves are fixed (month 1's training sets are the database, a later
  month's test scans its batch and its training sets the measurement); the seed draws the
  database's records per reference point (`data.records_per_rp` > 0) and, in the method, every
  initialisation, initial location and mini-batch.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import ml_collections
import numpy as np

from jaxfp.config import ConfigError
from jaxfp.data.longterm import load_longterm, load_longterm_month
from jaxfp.data.synthetic import WorldParams, evolve, make_world, measure, survey
from jaxfp.data.types import FingerprintSet
from jaxfp.train.keys import named_int, named_seed


class Period(NamedTuple):
    """One update: its number (month or week), the unlabelled batch, the fingerprints measured at the
    database's points in that period (scoring only)."""

    number: int
    batch: FingerprintSet
    measured: FingerprintSet


def data_varies_with_seed(config: ml_collections.ConfigDict) -> bool:
    """Whether the seed draws the data (then no run serves two seeds)."""
    return config.data.source == "synthetic" or bool(config.data.records_per_rp)


def load_periods(
    config: ml_collections.ConfigDict, seed: int
) -> tuple[FingerprintSet, list[Period]]:
    """Seed `seed`'s initial database (its AP set = the APs it detects) and later periods."""
    if config.data.source == "longterm":
        db, periods = _longterm_periods(config, seed)
    elif config.data.source == "synthetic":
        db, periods = _synthetic_periods(config.synthetic, seed)
    else:
        raise ConfigError(
            f"config.data.source: expected 'longterm' or 'synthetic', got {config.data.source!r}"
        )
    heard = db.ap_ids[db.detected.any(0)]
    share = float(config.data.get("removed_ap_share", 0.0))
    if not 0.0 <= share < 1.0:
        raise ConfigError(f"config.data.removed_ap_share: expected a share in [0, 1), got {share}")
    if share:  # Fig. 19: these APs leave the database only; the batches still hear them
        rng = np.random.default_rng(named_seed(seed, "removed_aps"))
        kept = rng.permutation(len(heard))[: len(heard) - round(share * len(heard))]
        heard = heard[np.sort(kept)]  # in the database's order
    return db.select_aps(heard.tolist()), periods


@functools.lru_cache(maxsize=2)
def _longterm_months(
    path: str, reference: int, months: tuple[int, ...]
) -> tuple[FingerprintSet, tuple[Period, ...]]:
    """The reference month's training sets and the later months' periods (read once per run:
    every seed shares them)."""
    db = load_longterm_month(path, reference, "trn")
    available = sorted({int(k[:2]) for k in load_longterm(path, kinds=["trn"])})
    wanted = list(months) or [m for m in available if m > reference]
    periods = tuple(
        Period(m, load_longterm_month(path, m, "tst"), load_longterm_month(path, m, "trn"))
        for m in wanted
    )
    return db, periods


def _longterm_periods(
    config: ml_collections.ConfigDict, seed: int
) -> tuple[FingerprintSet, list[Period]]:
    """Month 1's training sets (optionally `records_per_rp` per point, drawn by the seed); later
    months' test sets as batches, their training sets as the measurement."""
    d = config.data
    db, periods = _longterm_months(str(d.path), int(d.reference_month), tuple(d.months))
    keep = d.records_per_rp
    if keep:
        rng = np.random.default_rng(named_seed(seed, "records_per_rp"))
        rows = np.concatenate(
            [rng.permutation(np.flatnonzero(db.rp_id == rp))[:keep] for rp in np.unique(db.rp_id)]
        )
        db = db.subset(np.sort(rows))
    return db, list(periods)


def _synthetic_periods(
    s: ml_collections.ConfigDict, seed: int
) -> tuple[FingerprintSet, list[Period]]:
    """A synthetic site with weekly AP churn at GUFU's Table 5 rates: week 0's survey is the
    database; each week one scan at `batch` random places is the batch, a fresh survey the
    measurement."""
    params = dataclasses.replace(
        WorldParams(),
        width_m=s.width_m,
        height_m=s.height_m,
        n_aps=s.n_aps,
        path_loss_exponent=s.path_loss_exponent,
        sensitivity_dbm=s.sensitivity_dbm,
        install_rate=s.install_rate,
        removal_rate=s.removal_rate,
        power_change_rate=s.power_change_rate,
    )
    world = make_world(params, named_int(seed, "world"))
    db = survey(world, s.samples_per_rp, seed=named_int(seed, "survey", 0))
    periods = []
    for week in range(1, s.weeks + 1):
        world = evolve(world, seed=named_int(seed, "churn", week))
        places = np.random.default_rng(named_seed(seed, "batch places", week))
        xy = places.uniform(0, [s.width_m, s.height_m], (s.batch, 2))
        batch = measure(world, xy, np.zeros(s.batch, np.int64), seed=named_int(seed, "batch", week))
        measured = survey(world, s.samples_per_rp, seed=named_int(seed, "survey", week))
        periods.append(Period(week, batch, measured))
    return db, periods


def ap_churn(db: FingerprintSet, periods: list[Period]) -> dict[int, dict[str, int]]:
    """Table 5 from the data: per period, APs the batch detects that no earlier period (or the
    database) did, and APs the previous period detected that this batch does not."""
    seen = set(db.ap_ids[db.detected.any(0)].tolist())
    previous = set(seen)
    out = {}
    for period in periods:
        heard = set(period.batch.ap_ids[period.batch.detected.any(0)].tolist())
        out[period.number] = {"new_aps": len(heard - seen), "gone_aps": len(previous - heard)}
        seen |= heard
        previous = heard
    return out

"""The periods GUFU updates through: months of the UJI long-term library set, or weeks of a
synthetic site with AP churn at GUFU's Table 5 rates; and the churn each period brings."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import ml_collections
import numpy as np

from jaxfp.config import ConfigError
from jaxfp.data.longterm import load_longterm, load_longterm_month
from jaxfp.data.synthetic import WorldParams, evolve, make_world, measure, survey
from jaxfp.data.types import FingerprintSet


class Period(NamedTuple):
    """One update: its number (month or week), the unlabelled batch, the fingerprints measured at the
    database's points in that period (scoring only)."""

    number: int
    batch: FingerprintSet
    measured: FingerprintSet


def load_periods(config: ml_collections.ConfigDict) -> tuple[FingerprintSet, list[Period]]:
    """The initial database (its AP set = the APs it detects) and the later periods."""
    if config.data.source == "longterm":
        db, periods = _longterm_periods(config)
    elif config.data.source == "synthetic":
        db, periods = _synthetic_periods(config.synthetic)
    else:
        raise ConfigError(
            f"config.data.source: expected 'longterm' or 'synthetic', got {config.data.source!r}"
        )
    return db.select_aps(db.ap_ids[db.detected.any(0)].tolist()), periods


def _longterm_periods(config: ml_collections.ConfigDict) -> tuple[FingerprintSet, list[Period]]:
    """Month 1's training sets (optionally `records_per_rp` per point); later months' test sets
    as batches, their training sets as the measurement."""
    path, reference = config.data.path, config.data.reference_month
    db = load_longterm_month(path, reference, "trn")
    keep = config.data.records_per_rp
    if keep:
        rng = np.random.default_rng(config.data.subsample_seed)
        rows = np.concatenate(
            [rng.permutation(np.flatnonzero(db.rp_id == rp))[:keep] for rp in np.unique(db.rp_id)]
        )
        db = db.subset(np.sort(rows))
    available = sorted({int(k[:2]) for k in load_longterm(path, kinds=["trn"])})
    wanted = list(config.data.months) or [m for m in available if m > reference]
    periods = [
        Period(m, load_longterm_month(path, m, "tst"), load_longterm_month(path, m, "trn"))
        for m in wanted
    ]
    return db, periods


def _synthetic_periods(s: ml_collections.ConfigDict) -> tuple[FingerprintSet, list[Period]]:
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
    world = make_world(params, s.seed)
    db = survey(world, s.samples_per_rp, seed=s.seed + 1)
    periods = []
    rng = np.random.default_rng(s.seed + 2)
    for week in range(1, s.weeks + 1):
        world = evolve(world, seed=1000 * week + s.seed + 3)  # fresh churn draws every week
        xy = rng.uniform(0, [s.width_m, s.height_m], (s.batch, 2))
        batch = measure(world, xy, np.zeros(s.batch, np.int64), seed=1000 * week + s.seed)
        measured = survey(world, s.samples_per_rp, seed=1000 * week + s.seed + 1)
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

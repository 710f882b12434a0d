"""GUFU on drift, period by period (GUFU paper §7 protocol), on real months or a synthetic site.

Real: the UJI long-term library set; initial database = the reference month's training sets
(optionally `records_per_rp` records per reference point); each later month's test samples arrive
as one unlabelled batch (their coordinates only score the predicted locations) and its training
sets are the measurement. Synthetic: weekly AP churn at GUFU's Table 5 rates. Each seed is one
replicate: on the synthetic site its own world, churn, batches and surveys; on UJI months the
months are fixed and the seed draws the records-per-point subsample and the method's own draws
(`data`). Per period and variant: location error of the batch, RSS error of the database against
the period's measurement at the same points, APs added/removed, seconds per update, and the
diagnostics of `study` and `scoring.drift_capture`; over seeds, paired differences of each GUFU
variant against each baseline (`tables`).

Variants are config (`config.variants`: each a set of `config.gufu` settings; the command line's
`--config.gufu.KEY` wins over a variant's own); `config.run_variants` picks which run, GUFU's or
the databases of `variants.BASELINES`. No choice is made inside the protocol: every variant runs
with its configured settings and every period is reported.

Resume: each finished (variant, seed) writes its periods with the settings that shaped them; a
rerun reuses it when those settings are unchanged and recomputes it (saying so) otherwise; an
unfinished one restarts from the initial database. The ISO/IEC 18305 and IPIN constants in
`config.eval` shape the rows only when they differ from `StandardConstants`' defaults, so runs
made before the rows carried those fields are reused (without them). Inner fits log to
`variant/seedN/metrics.jsonl`; a line per period says where the run is.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Iterator
from typing import Any

import ml_collections
import numpy as np

from jaxfp.common.atomic_files import write_json
from jaxfp.config import ConfigError, variant_settings
from jaxfp.data.types import FingerprintSet
from jaxfp.eval.iso18305 import StandardConstants
from jaxfp.methods import program
from jaxfp.methods.gufu.data import Period, data_varies_with_seed, load_periods
from jaxfp.methods.gufu.study import Gufu
from jaxfp.methods.gufu.tables import write_tables
from jaxfp.methods.gufu.variants import BASELINES, SEEDLESS, new_gufu, run_variant
from jaxfp.train.logging import MetricWriter
from jaxfp.train.optimise import StepLog
from jaxfp.train.workdir import config_as_json, config_differences, prepare_workdir


def shaping(config: ml_collections.ConfigDict, variant: str, seed: int) -> dict[str, Any]:
    """The settings one (variant, seed) result depends on."""
    standard = {f.name for f in dataclasses.fields(StandardConstants)}
    scoring = {k: v for k, v in config.eval.to_dict().items() if k not in standard}
    out: dict[str, Any] = {"data": config.data.to_dict(), "eval": scoring}
    constants = StandardConstants.from_config(config.eval)
    if constants != StandardConstants():  # the defaults leave earlier runs valid
        out["standard_metrics"] = dataclasses.asdict(constants)
    if config.data.source == "synthetic":
        out["synthetic"] = config.synthetic.to_dict()
    if variant not in BASELINES:
        out["gufu"] = variant_settings(config, "gufu", variant).to_dict()
    elif variant in ("wknn_neighbour_average", "itoloc_average"):
        out["neighbours"] = {
            k: config.gufu[k] for k in ("virtual_threshold", "max_virtual_per_node")
        }
    if variant == "itoloc_average":
        out["itoloc"] = config.itoloc.to_dict()
        out["itoloc_first_batch"] = config.itoloc_first_batch
    if variant not in SEEDLESS or data_varies_with_seed(config):
        out["seed"] = seed
    return config_as_json(out)


def _run_one(config, workdir, variant, seed, db, periods, label) -> list[dict[str, Any]]:
    """A (variant, seed)'s periods: reused when its shaping settings match, else computed."""
    folder = os.path.join(workdir, variant, f"seed{seed}")
    path = f"{folder}.json"
    wanted = shaping(config, variant, seed)
    if os.path.exists(path):
        with open(path) as f:
            saved = json.load(f)
        if saved.get("shaping") == wanted:
            print(f"{variant}, seed {seed}: finished earlier, reused", flush=True)
            return saved["rows"]
        diffs = config_differences(saved.get("shaping", {}), wanted)
        print(f"{variant}, seed {seed}: settings changed ({'; '.join(diffs[:4])}); recomputing")
    prepare_workdir(folder, wanted)
    writer = MetricWriter(folder)
    writer.truncate_after(0)  # an unfinished earlier attempt restarts from the initial database
    start = time.perf_counter()
    print(f"{variant}, seed {seed}: {label}", flush=True)
    try:
        rows = run_variant(config, variant, seed, db, periods, StepLog(writer), workdir=folder)
    finally:
        writer.close()
    print(f"{variant}, seed {seed}: done in {time.perf_counter() - start:.0f} s", flush=True)
    write_json(path, {"shaping": wanted, "rows": rows}, indent=1)
    return rows


def run_periods(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Every (variant, seed) through every period, then the tables (`tables.write_tables`)."""
    known = [*config.variants.keys(), *BASELINES]
    unknown = set(config.run_variants) - set(known)
    if unknown:
        raise ConfigError(
            f"config.run_variants: unknown {sorted(unknown)}; expected some of {known}"
        )
    for variant in config.run_variants:  # a bad setting fails now, not after hours of training
        if variant not in BASELINES:
            Gufu.check(variant_settings(config, "gufu", variant))
    os.makedirs(workdir, exist_ok=True)
    data = {seed: load_periods(config, seed) for seed in config.seeds}
    shared = not data_varies_with_seed(config)
    unit = "month" if config.data.source == "longterm" else "week"
    runs: dict[str, dict[int, list]] = {}
    for variant in config.run_variants:
        runs[variant] = {}
        for seed in config.seeds:
            if shared and variant in SEEDLESS and runs[variant]:  # one run serves every seed
                runs[variant][seed] = next(iter(runs[variant].values()))
                continue
            db, periods = data[seed]
            label = f"{unit}s {[p.number for p in periods]}"
            runs[variant][seed] = _run_one(config, workdir, variant, seed, db, periods, label)
    return write_tables(config, workdir, data, runs, unit)


def updated_databases(
    config: ml_collections.ConfigDict, variant: str, seed: int, log: StepLog | None = None
) -> Iterator[tuple[Period, FingerprintSet]]:
    """GUFU `variant` of seed `seed` through the periods of `load_periods`: after each period's
    update, that period and the database it leaves (the initial database's records, locations and
    labels with the updated RSS and APs), for scoring the database with another locator."""
    Gufu.check(variant_settings(config, "gufu", variant))
    db, periods = load_periods(config, seed)
    # The model `variants.run_variant` builds: the same draws as the protocol's run of this seed
    model = new_gufu(config, variant, seed, db, log)
    model.offline()
    for period in periods:
        model.update(period.batch.rss, period.batch.ap_ids)
        rss, ap_ids = np.array(model.rss, np.float32), np.asarray(model.ap_ids, str)
        database = dataclasses.replace(db, rss=rss, detected=~np.isnan(rss), ap_ids=ap_ids)
        yield period, database


PROGRAMS = {"periods": run_periods}


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    os.makedirs(workdir, exist_ok=True)
    return program(config.method, PROGRAMS)(config, workdir)

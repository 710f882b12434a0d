"""One (variant, seed) through every period: a GUFU variant (its settings in `config.variants`) or
one of the databases GUFU is compared with: never updated (`static`), location-then-average
(`wknn_average`), and §7.1's neighbour averaging of records located by WkNN
(`wknn_neighbour_average`) or by iToLoc (`itoloc_average`, `config.itoloc`: trained on the
database, with `config.itoloc_first_batch` also co-trained on the first batch as the paper
says). The paper's other baselines (Fidora, MTDAN, WiDAGCN) are not built. Each period's row
also carries the ISO/IEC 18305 and IPIN fields of the batch's locations (`scoring.located_standard`,
the constants from `config.eval`)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import ml_collections
import numpy as np

from jaxfp.config import variant_settings
from jaxfp.data.types import FingerprintSet
from jaxfp.eval.iso18305 import StandardConstants, nearest_floor
from jaxfp.methods.gufu.data import Period
from jaxfp.methods.gufu.scoring import (
    detection_errors,
    drift_capture,
    forgetting_check,
    located_standard,
    places,
    rss_error,
)
from jaxfp.methods.gufu.simple_updates import (
    location_then_average,
    neighbour_average,
    wknn_locations,
)
from jaxfp.methods.gufu.study import Gufu
from jaxfp.methods.itoloc.study import fit_locator
from jaxfp.train.keys import named_key
from jaxfp.train.optimise import StepLog

BASELINES = ("static", "wknn_average", "wknn_neighbour_average", "itoloc_average")
# No randomness of their own: where the seed does not draw the data, one run serves every seed
SEEDLESS = ("static", "wknn_average", "wknn_neighbour_average")


def new_gufu(
    config: ml_collections.ConfigDict,
    variant: str,
    seed: int,
    db: FingerprintSet,
    log: StepLog | None = None,
) -> Gufu:
    """GUFU `variant` of seed `seed` on the database `db` (a copy of its RSS), before the offline
    stage: the variant's settings, the records' places and the seed's key — every variant of a seed
    from the same key, so their draws pair."""
    floors = np.unique(db.floor) if db.floor is not None else np.zeros(1, np.int64)
    xy = places(db, config.data.floor_height_m, floors)
    settings = variant_settings(config, "gufu", variant)
    key = named_key(seed, "gufu")
    return Gufu(settings, db.ap_ids, db.rss.copy(), xy, key, log=log or StepLog())


def run_variant(
    config: ml_collections.ConfigDict,
    variant: str,
    seed: int,
    db: FingerprintSet,
    periods: list[Period],
    log: StepLog | None = None,
    say: Callable[[str], None] = print,
    workdir: str | None = None,
) -> list[dict[str, Any]]:
    """Per period: location error (and floor hit), RSS error (one-sided and the symmetric three
    parts), the records' change against the measured drift, APs, GUFU's graph diagnostics (with
    MLP1's move from its initial guess and that guess's error), seconds; period 0 = offline."""
    floors = np.unique(db.floor) if db.floor is not None else np.zeros(1, np.int64)
    height = config.data.floor_height_m
    constants = StandardConstants.from_config(config.eval)
    ap_ids, rss, xy = db.ap_ids, db.rss.copy(), places(db, height, floors)
    out: list[dict[str, Any]] = []
    model, locator = None, None
    if variant == "itoloc_average":  # its networks train once, in `workdir`, resumable
        itoloc = config.itoloc.copy_and_resolve_references()
        itoloc.seeds = (seed,)
        if config.data.source == "synthetic":  # one device, no collections: a single domain
            itoloc.domain_keys = ("device",)
        first = periods[0].batch if config.itoloc_first_batch and periods else None
        if workdir is None:
            raise ValueError("itoloc_average trains iToLoc's networks: give run_variant a workdir")
        locator = fit_locator(itoloc, os.path.join(workdir, "itoloc"), db, first)
    if variant not in BASELINES:
        model = new_gufu(config, variant, seed, db, log)
        rss = model.rss  # the database the updates rewrite
        offline = model.offline()
        kept = {k: v for k, v in offline.items() if k.startswith(("ae_", "gnn_"))}
        out.append({"period": 0, "offline_seconds": offline["seconds"], **kept})
        detail = ""
        if "ae_error_db" in offline:  # none without the feature extractor (an ablation)
            detail = (
                f"; autoencoder error {offline['ae_error_db']:.1f} dB, "
                f"{offline['ae_below_floor']:.0%} of the detected values decoded below the floor"
            )
        detail += f"; GNN loss {offline['gnn_loss']:.3f}"
        say(f"  offline stage {offline['seconds']:.1f} s{detail}")
    for period in periods:
        batch = period.batch
        before = (rss, ap_ids)
        start = time.perf_counter()
        row: dict[str, Any] = {"period": period.number, "aps_added": 0, "aps_removed": 0}
        moves = ""
        if model is not None:
            result = model.update(batch.rss, batch.ap_ids)
            located, initial = result.pop("xy"), result.pop("xy_initial")
            round_moves = result.pop("round_moves_m")
            row.update({k: v for k, v in result.items() if k != "seconds"})
            row["initial_error_m"] = float(np.linalg.norm(initial[:, :2] - batch.xy, axis=1).mean())
            moves = ", passes moved " + " ".join(f"{m:.2f}" for m in round_moves) + " m"
            if "ae_error_db" in result:
                moves += f", autoencoder {result['ae_error_db']:.2f} dB"
            ap_ids, rss = model.ap_ids, model.rss
        else:
            on_db = batch.select_aps(ap_ids.tolist()).rss
            if locator is None:
                located = wknn_locations(rss, xy, on_db)
            else:
                positions, floor_codes = locator(batch)
                located = positions[0]
                if xy.shape[1] == 3:
                    located = np.c_[located, height * floor_codes[0]]
            g = config.gufu
            if variant == "wknn_average":
                known = set(ap_ids.tolist())
                fresh = [ap for ap in batch.ap_ids[batch.detected.any(0)] if ap not in known]
                row["aps_added"] = len(fresh)
                ap_ids = np.concatenate([ap_ids, np.asarray(fresh, str)])
                rss = np.concatenate([rss, np.full((len(rss), len(fresh)), np.nan, np.float32)], 1)
                e = config.eval
                rss = location_then_average(
                    rss,
                    xy,
                    batch.select_aps(ap_ids.tolist()).rss,
                    located,
                    e.average_radius_m,
                    e.average_blend,
                )
            elif variant != "static":  # §7.1's neighbour averaging
                rss = neighbour_average(
                    rss, xy, on_db, located, g.virtual_threshold, g.max_virtual_per_node
                )
        row["seconds_per_update"] = time.perf_counter() - start
        row["location_error_m"] = float(np.linalg.norm(located[:, :2] - batch.xy, axis=1).mean())
        if xy.shape[1] == 3:
            row["floor_accuracy"] = float(
                np.mean(nearest_floor(located, height, floors) == batch.floor)
            )
        labelled = floors if db.floor is not None else None
        row.update(located_standard(located, batch, height, labelled, constants))
        row["rss_error_db"] = rss_error(
            rss, ap_ids, db.xy, period.measured, config.eval.missing_dbm, db.floor
        )
        row.update(detection_errors(rss, ap_ids, db.xy, period.measured, db.floor))
        row.update(drift_capture(before, (rss, ap_ids), db.xy, period.measured, db.floor))
        row.update(forgetting_check(before[1], ap_ids, period.measured))
        row["aps"] = int(len(ap_ids))
        out.append(row)
        say(
            f"  period {period.number}: RSS error {row['rss_error_db']:.2f} dB (values "
            f"{row['value_error_db']:.2f} dB, false {row['false_detection_rate']:.1%}, missed "
            f"{row['missed_detection_rate']:.1%}), location error {row['location_error_m']:.2f} m"
            f"{moves}, {row['seconds_per_update']:.1f} s"
        )
    return out

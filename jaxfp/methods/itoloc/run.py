"""`itoloc.devices` and `itoloc.drift`: iToLoc's protocols on a synthetic world and real sets.

- devices: train on some devices' labelled scans (domains = device), test per held-out device;
  a fraction of each held-out device's scans (`data.unlabelled_target_fraction`) is handed to the
  offline training unlabelled as the target domain of eq. 8 (§III-A: domains "without label
  information") and not scored; 0 trains on the source devices alone. The `update_variants` are
  then co-trained (§IV) on those target scans and scored again on the same scored scans.
  What a seed varies: on the synthetic world, the world, every device's survey noise, the target
  split and the initialisation; on a real set (fixed files), the target split, the update's draws
  and the initialisation.
- drift: train on month 1 of the long-term set (domains = collection), then month by month run
  the co-training update (§IV) of the `update_variants` on that month's unlabelled test scans and
  score on them; "no update" is the month-1 model never updated. What a seed varies: the
  initialisation and the update's draws (pool order, smearing, dropout passes); the month files
  are fixed.

Variants: `config.variants` (run: `config.run_variants`, the first is the reference the paired
table compares the others with); WkNN on all APs is the fingerprinting baseline. No choice is made
inside a protocol (settings are config), so no validation part is needed; the scored scans'
locations feed only the scores and the co-training log. Metrics per seed: mean 2-D error, 95th
percentile, region success (right floor and `region_cell_m` grid cell) and the ISO/IEC 18305 and
IPIN fields (`jaxfp.eval.iso18305`, constants from `eval`); the table gives the mean over seeds with
its t-interval, a second table the paired differences that the claims rest on, a third the
standard fields (mean over seeds).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import ml_collections

from jaxfp.data.registry import load_parts
from jaxfp.eval.iso18305 import StandardConstants, standard_table
from jaxfp.eval.results import table, write_results
from jaxfp.eval.stats import paired_rows
from jaxfp.methods import program
from jaxfp.methods.itoloc import cotraining
from jaxfp.methods.itoloc.data import Domains, device_draws
from jaxfp.methods.itoloc.study import METRIC_COLUMNS, Scores, Study, check_variants, metric_row

WKNN_IMAGE = "wknn, image APs"  # WkNN on the APs the image holds: the same input as iToLoc
PAIRED_COLUMNS = ["diff_m", "diff_m_ci_low", "diff_m_ci_high", "verdict"]
PAIRED_TABLE = "paired differences of the mean error over seeds (A - B, m; negative: A better)"
COTRAINING_TABLE = (
    "co-training: pseudo labels per round (kept per head and their true error in m; "
    "mean over seeds and heads)"
)


def _paired(values: dict[str, Scores], pairs: list[tuple[str, str, str]]) -> dict[str, Any]:
    """(row name, A, B) -> A - B of the per-seed mean errors, where both rows ran."""
    return paired_rows({k: v["mean_m"] for k, v in values.items()}, pairs, "diff_m")


def _write(
    workdir: str,
    title: str,
    config: ml_collections.ConfigDict,
    values: dict[str, Scores],
    pairs: list[tuple[str, str, str]],
    study: Study,
    update_log: list[dict[str, Any]],
) -> dict[str, Any]:
    """results.json: the rows, the paired table and the co-training table (when an update ran)."""
    rows = {name: metric_row(v, study.seeds) for name, v in values.items()}
    paired = _paired(values, pairs)
    tables = {PAIRED_TABLE: table(paired, PAIRED_COLUMNS)}
    if update_log:
        columns = ["pool", "sigma", "kept", "error_m"]
        tables[COTRAINING_TABLE] = table(cotraining.pseudo_label_summary(update_log), columns)
    tables.update(standard_table(rows, StandardConstants.from_config(config.get("eval"))))
    aps = {str(s): a.tolist() for s, a in zip(study.seeds, study.aps, strict=True)}
    write_results(
        workdir, title, config, rows, METRIC_COLUMNS, tables, aps=aps, update_log=update_log
    )
    return {"rows": rows, "paired": paired, "update_log": update_log}


def _wknn_rows(
    config: ml_collections.ConfigDict, study: Study, sets: list, name: Callable[[str], str]
) -> dict[str, Scores]:
    """WkNN on all APs, on the image's APs and on each of `config.wknn_ap_counts` most heard APs
    (the input's AP-count curve), scored on seed m's `sets[m]`; rows named by `name`."""
    rows = {name("wknn"): study.wknn(sets), name(WKNN_IMAGE): study.wknn(sets, study.aps)}
    for count in config.get("wknn_ap_counts", ()):
        rows[name(f"wknn, {count} APs")] = study.wknn(sets, study.top_aps(int(count)))
    return rows


# --- protocol: device heterogeneity -------------------------------------------------------------
def run_devices(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    check_variants(config)
    draws = device_draws(config)
    domains = Domains(config.domain_keys, config.domain_target)
    for d in draws:
        domains.of(d.train)
        if d.target is not None:
            domains.of_target(d.target)
    shared = {
        "data": config.data.to_dict(),
        "seeds": list(config.seeds),
        "image": config.image.to_dict(),
    }
    if config.data.source == "synthetic":
        shared["synthetic"] = config.synthetic.to_dict()
    train_sets = [d.train for d in draws]
    study = Study(config, workdir, train_sets, domains, shared)
    held_out = [str(v) for v in config.data.held_out]
    per_device = {dev: [d.scored.subset(d.scored.device == dev) for d in draws] for dev in held_out}
    has_target = draws[0].target is not None
    values: dict[str, Scores] = {}
    update_log: list[dict[str, Any]] = []
    for name in config.run_variants:
        variant = study.variant(name)
        print(f"[itoloc] {name}: training {len(study.seeds)} seeds", flush=True)
        labelled = study.scans(train_sets, variant)
        target = study.scans([d.target for d in draws], variant, True) if has_target else None
        states = study.offline(variant, labelled, target)
        for dev, sets in per_device.items():  # before the update: its steps donate the states
            values[f"{name} @ {dev}"] = study.evaluate(states, variant, sets)
        if target is not None and name in config.update_variants:
            states, log = cotraining.update(
                study, states, variant, labelled, target, f"update/{name}"
            )
            update_log += log
            for dev, sets in per_device.items():
                values[f"{name}, updated @ {dev}"] = study.evaluate(states, variant, sets)
    for dev, sets in per_device.items():
        values.update(_wknn_rows(config, study, sets, lambda row, dev=dev: f"{row} @ {dev}"))
    ref, pairs = config.run_variants[0], []
    for dev in held_out:
        for other in [*config.run_variants[1:], "wknn", WKNN_IMAGE]:
            pairs.append((f"{ref} - {other} @ {dev}", f"{ref} @ {dev}", f"{other} @ {dev}"))
        for name in config.update_variants:
            updated = f"{name}, updated @ {dev}"
            pairs.append((f"{name}, updated - {name} @ {dev}", updated, f"{name} @ {dev}"))
            pairs.append((f"{name}, updated - wknn @ {dev}", updated, f"wknn @ {dev}"))
    unlabelled = 0 if not has_target else draws[0].target.n
    title = (
        f"{draws[0].train.source}: {draws[0].train.n} training scans at {len(study.site.xy)} "
        f"locations, devices held out {held_out} ({unlabelled} of their scans unlabelled in "
        f"training, {draws[0].scored.n} scored; counts of the first seed's draw); "
        f"{config.image.n_aps} APs in the image; seeds {list(study.seeds)}"
    )
    return _write(workdir, title, config, values, pairs, study, update_log)


# --- protocol: drift over months with the co-training update ------------------------------------
def run_drift(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    check_variants(config)
    d = config.data
    train_fs = load_parts(d.path, list(d.train_parts), d.format)
    months = {
        m: load_parts(d.path, [p.format(month=m) for p in d.month_parts], d.format).aligned_to(
            train_fs
        )
        for m in d.months
    }
    domains = Domains(config.domain_keys, config.domain_target)
    domains.of(train_fs)
    for fs in months.values():
        domains.of_target(fs)
    # Which months follow does not shape the month-1 training (its domain count aside).
    data = {k: v for k, v in d.to_dict().items() if k not in ("months", "month_parts")}
    shared = {"data": data, "domains": len(domains.ids), "seeds": list(config.seeds)}
    shared["image"] = config.image.to_dict()
    n = len(config.seeds)
    study = Study(config, workdir, [train_fs] * n, domains, shared)
    values: dict[str, Scores] = {}
    update_log: list[dict[str, Any]] = []
    for name in config.run_variants:
        variant = study.variant(name)
        labelled = study.scans([train_fs] * n, variant)
        print(f"[itoloc] {name}: training {n} seeds on {train_fs.n} scans", flush=True)
        offline = study.offline(variant, labelled)
        states = offline
        for m, fs in months.items():  # before any update: an update's steps donate the states
            values[f"month {m:02d} {name}, no update"] = study.evaluate(offline, variant, [fs] * n)
        if name not in config.update_variants:
            continue
        for m, fs in months.items():
            test = study.scans([fs] * n, variant, True)
            states, log = cotraining.update(
                study, states, variant, labelled, test, f"update/{name}/month{m:02d}"
            )
            update_log += log
            values[f"month {m:02d} {name}, updated"] = study.evaluate(states, variant, [fs] * n)
    for m, fs in months.items():
        values.update(_wknn_rows(config, study, [fs] * n, lambda row, m=m: f"month {m:02d} {row}"))
    ref, pairs = config.run_variants[0], []
    for m in months:
        at = f"month {m:02d}"
        reference = f"{at} {ref}, no update"
        for other in config.run_variants[1:]:
            pairs.append((f"{at}: {ref} - {other}", reference, f"{at} {other}, no update"))
        pairs.append((f"{at}: {ref} - wknn", reference, f"{at} wknn"))
        pairs.append((f"{at}: {ref} - {WKNN_IMAGE}", reference, f"{at} {WKNN_IMAGE}"))
        for name in config.update_variants:
            updated = f"{at} {name}, updated"
            pairs.append((f"{at}: {name}, updated - no update", updated, f"{at} {name}, no update"))
            pairs.append((f"{at}: {name}, updated - wknn", updated, f"{at} wknn"))
    title = (
        f"{train_fs.source}: trained on {train_fs.n} scans at {len(study.site.xy)} locations; months "
        f"{list(d.months)}; {config.image.n_aps} APs in the image; seeds {list(study.seeds)}"
    )
    values = dict(sorted(values.items()))
    return _write(workdir, title, config, values, pairs, study, update_log)


PROGRAMS = {"devices": run_devices, "drift": run_drift}


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    os.makedirs(workdir, exist_ok=True)
    return program(config.method, PROGRAMS)(config, workdir)

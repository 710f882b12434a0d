"""`fpn.synthetic` and `fpn.drift`: FPN's protocols.

- synthetic (the paper's experiment): a three-floor synthetic world with reference points on a
  3 m grid; train on walks through it with its radio map, then `moved_aps` APs are moved, the map
  re-surveyed, and each network is scored before ("untrained map") and after ("fine-tuned") a
  brief fine-tune on walks of the changed world; the old map is scored too. Each seed is a
  replicate: its own world, moved APs, surveys, walk-scan noise, walks and initialisation.
- drift (UJI long-term library set): map and walks of month 1's training scans; then month by
  month the map is rebuilt from that month's training scans (a point not re-measured keeps its
  row), scored untrained, briefly fine-tuned (starting from last month's weights), scored again;
  every month's test scans, assembled into walks, are the test set. The scans are fixed: a seed
  varies each point's validation split, the training, validation and test walks, and the
  initialisation.

Networks: `config.run_variants` of `config.variants`; baselines: `config.baselines.run`. Metrics
over every step of every test walk (`study.Study`), a mean and Student-t interval over seeds per
row, and a second table of paired differences over seeds for the comparisons the claims rest on.
Every choice inside a protocol (early stopping) is made on validation walks drawn from the
training scans; test walks are only scored.
"""

from __future__ import annotations

import os
from typing import Any

import ml_collections

from jaxfp.data.places import ReferencePoints
from jaxfp.eval.results import table, write_results
from jaxfp.methods import program
from jaxfp.methods.fpn.data import PERIODS, common_points, load_month, synthetic_draw
from jaxfp.methods.fpn.report import (
    METRIC_COLUMNS,
    PAIR_COLUMNS,
    PAIRED_TABLE,
    Evaluation,
    per_point,
    plots,
)
from jaxfp.methods.fpn.study import Study, check_config


# --- protocol: the paper's experiment on a synthetic three-floor world --------------------------
def synthetic_pairs() -> list[tuple[str, str, str]]:
    """(name, row A, row B) of the paired comparisons: Table 1's ordering on the trained map, the
    untrained new map against the basic fingerprint, and what fine-tuning recovers."""
    o, m = "original APs", "moved APs"
    return [
        (f"{o}: fpn - nearest RP", f"{o}: fpn", f"{o}: nearest RP"),
        (f"{o}: fpn - Kalman", f"{o}: fpn", f"{o}: Kalman"),
        (f"{o}: fpn - plain_lstm", f"{o}: fpn", f"{o}: plain_lstm"),
        (f"{o}: fpn - fpn_raw_map", f"{o}: fpn", f"{o}: fpn_raw_map"),
        (f"{o}: plain_lstm - nearest RP", f"{o}: plain_lstm", f"{o}: nearest RP"),
        (f"{o}: Kalman - nearest RP", f"{o}: Kalman", f"{o}: nearest RP"),
        (f"{m}: fpn untrained - nearest RP", f"{m}: fpn, new map untrained", f"{m}: nearest RP"),
        (
            f"{m}: fpn fine-tuned - fpn untrained",
            f"{m}: fpn, new map fine-tuned",
            f"{m}: fpn, new map untrained",
        ),
        (
            f"{m}: fpn fine-tuned - plain_lstm fine-tuned",
            f"{m}: fpn, new map fine-tuned",
            f"{m}: plain_lstm, new map fine-tuned",
        ),
        (f"fpn: {m} fine-tuned - {o}", f"{m}: fpn, new map fine-tuned", f"{o}: fpn"),
    ]


def run_synthetic(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    check_config(config)
    s, walk, seeds = config.synthetic, config.walk, tuple(config.seeds)
    draws = [synthetic_draw(s, float(walk.noise_db), seed) for seed in seeds]
    points = common_points([d["before"]["map"] for d in draws])
    shared = {"synthetic": s.to_dict(), "radio_map": config.radio_map.to_dict()}
    shared["seeds"] = list(seeds)
    study = Study(config, workdir, points, shared)
    maps = {p: [study.map_of(d[p]["map"]) for d in draws] for p in PERIODS}
    train = {p: [study.scans(d[p]["train"]) for d in draws] for p in PERIODS}
    walks = {p: study.test_walks([study.scans(d[p]["test"]) for d in draws], p) for p in PERIODS}
    out, curves, n = Evaluation(seeds), {}, len(points)
    for name in config.run_variants:
        variant = study.variant(name)
        print(f"[fpn] {name}: training {len(seeds)} seeds", flush=True)
        states = study.train(
            f"train/{name}", "before", variant, None, maps["before"], train["before"], config.train
        )
        trained = study.network_scores(states, variant, walks["before"], maps["before"])
        out.add(f"original APs: {name}", trained)
        untrained = study.network_scores(states, variant, walks["after"], maps["after"])
        if variant.net.use_map:
            stale = study.network_scores(states, variant, walks["after"], maps["before"])
            out.add(f"moved APs: {name}, old map", stale)
        out.add(f"moved APs: {name}, new map untrained", untrained)
        tuned, seconds = study.fine_tune(
            f"adapt/{name}", "after", variant, states, maps["after"], train["after"]
        )
        adapted = study.network_scores(tuned, variant, walks["after"], maps["after"])
        out.add(f"moved APs: {name}, new map fine-tuned", adapted, seconds)
        curves[name] = {
            "trained map": per_point(trained, n),
            "untrained map": per_point(untrained, n),
            "fine-tuned": per_point(adapted, n),
        }
    for period, label in (("before", "original APs"), ("after", "moved APs")):
        databases, tests = [d[period]["map"] for d in draws], [d[period]["test"] for d in draws]
        found = study.baseline_scores(walks[period], maps[period], databases, tests)
        for method, scores in found.items():
            out.add(f"{label}: {method}", scores)
    paired = out.paired(synthetic_pairs())
    title = (
        f"synthetic world, {s.n_floors} floors, {n} reference points ({s.rp_spacing_m} m grid), "
        f"{s.n_aps} APs, {s.moved_aps} moved; walks of {walk.length} steps; seeds {list(seeds)}, "
        "each its own world, surveys, noise, walks and initialisation"
    )
    write_results(
        workdir,
        title,
        config,
        out.rows,
        METRIC_COLUMNS,
        tables={PAIRED_TABLE: table(paired, PAIR_COLUMNS)},
        per_point_error_m={k: {m: v.tolist() for m, v in d.items()} for k, d in curves.items()},
        plots=plots(workdir, curves),
    )
    return {"rows": out.rows, "paired": paired, "per_point": curves}


# --- protocol: month by month on the UJI long-term library set ----------------------------------
def drift_pairs(first: int, months: list[int]) -> list[tuple[str, str, str]]:
    """(name, row A, row B): Table 1's ordering in the first month; per later month what the
    rebuilt map and the fine-tune give, and FPN against the Kalman fingerprint and the plain LSTM."""
    f = f"month {first:02d}"
    pairs = [
        (f"{f}: fpn - {other}", f"{f} fpn", f"{f} {other}")
        for other in ("nearest RP", "Kalman", "plain_lstm", "fpn_raw_map")
    ]
    for m in months:
        p = f"month {m:02d}"
        pairs += [
            (
                f"{p}: fpn fine-tuned - fpn untrained",
                f"{p} fpn, fine-tuned",
                f"{p} fpn, new map untrained",
            ),
            (
                f"{p}: fpn untrained - fpn month-{first} map",
                f"{p} fpn, new map untrained",
                f"{p} fpn, month-{first} map and weights",
            ),
            (f"{p}: fpn fine-tuned - Kalman", f"{p} fpn, fine-tuned", f"{p} Kalman"),
            (
                f"{p}: fpn fine-tuned - plain_lstm fine-tuned",
                f"{p} fpn, fine-tuned",
                f"{p} plain_lstm, fine-tuned",
            ),
        ]
    return pairs


def run_drift(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    check_config(config)
    d, walk, seeds = config.data, config.walk, tuple(config.seeds)
    first = load_month(d, d.first_month, "trn")
    points = ReferencePoints.of(first)
    data = {k: v for k, v in d.to_dict().items() if k != "months"}
    shared = {"data": data, "radio_map": config.radio_map.to_dict(), "seeds": list(seeds)}
    study = Study(config, workdir, points, shared)
    months = [d.first_month, *d.months]
    maps, databases, tests, walks, previous = {}, {}, {}, {}, None
    for m in months:  # one real set: every seed reads the same scans and maps
        databases[m] = first if m == d.first_month else load_month(d, m, "trn", first)
        previous = study.map_of(databases[m], previous)
        maps[m] = [previous] * len(seeds)
        tests[m] = load_month(d, m, "tst", first)
        walks[m] = study.test_walks([study.scans(tests[m])] * len(seeds), f"month {m:02d}")
    out = Evaluation(seeds)
    for name in config.run_variants:
        variant = study.variant(name)
        print(f"[fpn] {name}: training {len(seeds)} seeds on {first.n} scans", flush=True)
        month1 = study.train(
            f"train/{name}",
            f"month {d.first_month:02d}",
            variant,
            None,
            maps[d.first_month],
            [study.scans(first)] * len(seeds),
            config.train,
        )
        states = month1
        out.add(
            f"month {d.first_month:02d} {name}",
            study.network_scores(month1, variant, walks[d.first_month], maps[d.first_month]),
        )
        for m in d.months:
            if variant.net.use_map:
                out.add(
                    f"month {m:02d} {name}, month-{d.first_month} map and weights",
                    study.network_scores(month1, variant, walks[m], maps[d.first_month]),
                )
            out.add(
                f"month {m:02d} {name}, new map untrained",
                study.network_scores(states, variant, walks[m], maps[m]),
            )
            states, seconds = study.fine_tune(
                f"adapt/{name}/month{m:02d}",
                f"month {m:02d}",
                variant,
                states,
                maps[m],
                [study.scans(databases[m])] * len(seeds),
            )
            out.add(
                f"month {m:02d} {name}, fine-tuned",
                study.network_scores(states, variant, walks[m], maps[m]),
                seconds,
            )
    for m in months:
        found = study.baseline_scores(
            walks[m], maps[m], [databases[m]] * len(seeds), [tests[m]] * len(seeds)
        )
        for method, scores in found.items():
            out.add(f"month {m:02d} {method}", scores)
    paired = out.paired(drift_pairs(d.first_month, list(d.months)))
    title = (
        f"{first.source}: {len(points)} reference points of month {d.first_month}, "
        f"{first.n_aps} APs; months {list(d.months)}; test walks of {walk.length} steps over each "
        f"month's test scans; seeds {list(seeds)}, each its own validation split, walks and "
        "initialisation (the scans are fixed)"
    )
    rows = dict(sorted(out.rows.items()))
    tables = {PAIRED_TABLE: table(paired, PAIR_COLUMNS)}
    write_results(workdir, title, config, rows, METRIC_COLUMNS, tables=tables)
    return {"rows": rows, "paired": paired}


PROGRAMS = {"synthetic": run_synthetic, "drift": run_drift}


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    os.makedirs(workdir, exist_ok=True)
    return program(config.method, PROGRAMS)(config, workdir)

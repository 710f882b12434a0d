"""`fpn.synthetic` and `fpn.drift`: FPN's protocols.

- synthetic (the paper's experiment): a three-floor synthetic world with reference points on a
  3 m grid; train on walks (persistent heading and speed) through it with its radio map, then
  `moved_aps` APs are moved, the map re-surveyed, and each network is scored before ("untrained
  map") and after ("fine-tuned") a brief fine-tune on walks of the changed world; the old map is
  scored too. Every noise regime of `config.run_regimes` runs the whole experiment (rows prefixed
  by the regime). Each seed is a replicate: its own world, moved APs, surveys, walk-scan noise,
  walks and initialisation.
- drift (UJI long-term library set): map and walks of month 1's training scans; then month by
  month the map is rebuilt from that month's training scans (a point not re-measured keeps its
  row), scored untrained, briefly fine-tuned (starting from last month's weights), scored again;
  every month's test scans, assembled into walks, are the test set. Every choice (the Kalman
  stds, which map and weights to deploy) is made on `data.validation_months`; the other months
  are reported, pooled per seed. The scans are fixed: a seed varies each point's validation split,
  the training, validation and test walks, and the initialisation.

Networks: `config.run_variants` of `config.variants`; baselines: `config.baselines.run`. Metrics
over every step of every test walk (`study.Study`), a mean and Student-t interval over seeds per
row, and a second table of paired differences over seeds for the comparisons the claims rest on.
Early stopping uses validation walks drawn from the training scans; the synthetic Kalman stds are
chosen on walks over the training scans; test walks are only scored. Every row also carries the
ISO/IEC 18305 and IPIN fields (`report.standard_scores`; constants from `config.eval`), shown in a
table of their own and recorded under `standard_metrics` in results.json.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

import ml_collections
import numpy as np

from jaxfp.config import ConfigError
from jaxfp.data.places import ReferencePoints
from jaxfp.eval.iso18305 import StandardConstants
from jaxfp.eval.results import table, write_results
from jaxfp.methods import program
from jaxfp.methods.fpn.data import PERIODS, ScanNoise, common_points, load_month, synthetic_draw
from jaxfp.methods.fpn.report import (
    METRIC_COLUMNS,
    PAIR_COLUMNS,
    PAIRED_TABLE,
    Evaluation,
    learning_curve,
    learning_curve_figure,
    per_point,
    plots,
    pooled,
    standard_tables,
)
from jaxfp.methods.fpn.study import Study, check_config

# Rows `fpn` is paired with on the map it was trained on, in both protocols (those run)
COMPARED_WITH_FPN = (
    "nearest RP",
    "Kalman",
    "plain_lstm",
    "fpn_no_removal",
    "fpn_compare",
    "fpn_raw_map",
)


# --- protocol: the paper's experiment on a synthetic three-floor world --------------------------
def synthetic_pairs(regime: str) -> list[tuple[str, str, str]]:
    """(name, row A, row B) of one noise regime's paired comparisons: Table 1's ordering on the
    trained map, the untrained new map against the basic fingerprint, and what fine-tuning
    recovers."""
    o, m = f"{regime}: original APs", f"{regime}: moved APs"
    pairs = [(f"{o}: fpn - {other}", f"{o}: fpn", f"{o}: {other}") for other in COMPARED_WITH_FPN]
    pairs += [
        (f"{o}: plain_lstm - nearest RP", f"{o}: plain_lstm", f"{o}: nearest RP"),
        (f"{o}: Kalman - nearest RP", f"{o}: Kalman", f"{o}: nearest RP"),
        (f"{o}: fpn_compare - nearest RP", f"{o}: fpn_compare", f"{o}: nearest RP"),
        (f"{m}: fpn untrained - nearest RP", f"{m}: fpn, new map untrained", f"{m}: nearest RP"),
        (
            f"{m}: fpn untrained - fpn old map",
            f"{m}: fpn, new map untrained",
            f"{m}: fpn, old map",
        ),
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
        (  # §3.2.1: trained with AP removal, the network generalises to the changed map
            f"{m}: fpn untrained - fpn_no_removal untrained",
            f"{m}: fpn, new map untrained",
            f"{m}: fpn_no_removal, new map untrained",
        ),
        (
            f"{m}: fpn fine-tuned - fpn_no_removal fine-tuned",
            f"{m}: fpn, new map fine-tuned",
            f"{m}: fpn_no_removal, new map fine-tuned",
        ),
        (
            f"{regime}: fpn moved APs fine-tuned - original APs",
            f"{m}: fpn, new map fine-tuned",
            f"{o}: fpn",
        ),
    ]
    return pairs


def run_synthetic(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    check_config(config)
    s, walk, seeds = config.synthetic, config.walk, tuple(config.seeds)
    unknown = set(config.run_regimes) - set(s.regimes.keys())
    if unknown:
        raise ConfigError(
            f"config.run_regimes: unknown {sorted(unknown)}; expected some of {list(s.regimes)}"
        )
    out, curves, pairs, kalman = Evaluation(seeds), {}, [], {}
    for regime in config.run_regimes:
        noise = ScanNoise.from_config(s.regimes[regime], f"config.synthetic.regimes.{regime}")
        draws = [synthetic_draw(s, noise, seed) for seed in seeds]
        points = common_points([d["before"]["map"] for d in draws])
        shared = {"synthetic": s.to_dict(), "radio_map": config.radio_map.to_dict()}
        shared.update(seeds=list(seeds), regime=noise._asdict())
        buildings = draws[0]["before"]["map"].building is not None
        study = Study(config, os.path.join(workdir, regime), points, shared, buildings)
        maps = {p: [study.map_of(d[p]["map"]) for d in draws] for p in PERIODS}
        train = {p: [study.scans(d[p]["train"]) for d in draws] for p in PERIODS}
        tests = {p: [study.scans(d[p]["test"]) for d in draws] for p in PERIODS}
        walks = {p: study.test_walks(tests[p], p) for p in PERIODS}
        n = len(points)
        for name in config.run_variants:
            variant = study.variant(name)
            print(f"[fpn] {regime}: {name}: training {len(seeds)} seeds", flush=True)
            states = study.train(
                f"train/{name}",
                "before",
                variant,
                None,
                maps["before"],
                train["before"],
                config.train,
            )
            trained = study.network_scores(states, variant, walks["before"], maps["before"])
            out.add(f"{regime}: original APs: {name}", trained)
            untrained = study.network_scores(states, variant, walks["after"], maps["after"])
            if variant.net.use_map:
                stale = study.network_scores(states, variant, walks["after"], maps["before"])
                out.add(f"{regime}: moved APs: {name}, old map", stale)
            out.add(f"{regime}: moved APs: {name}, new map untrained", untrained)
            tuned, seconds = study.fine_tune(
                f"adapt/{name}", "after", variant, states, maps["after"], train["after"]
            )
            adapted = study.network_scores(tuned, variant, walks["after"], maps["after"])
            out.add(f"{regime}: moved APs: {name}, new map fine-tuned", adapted, seconds)
            curves[f"{regime}_{name}"] = {
                "trained map": per_point(trained, n),
                "untrained map": per_point(untrained, n),
                "fine-tuned": per_point(adapted, n),
            }
        for period, label in (("before", "original APs"), ("after", "moved APs")):
            # The Kalman stds are chosen on walks over the training scans, never the test walks.
            chosen = study.choose_kalman(
                study.validation_walks(train[period], period), maps[period]
            )
            kalman[f"{regime}: {label}"] = [list(c) for c in chosen]
            databases = [d[period]["map"] for d in draws]
            found = study.baseline_scores(
                walks[period], maps[period], databases, [d[period]["test"] for d in draws], chosen
            )
            for method, scores in found.items():
                out.add(f"{regime}: {label}: {method}", scores)
        pairs += synthetic_pairs(regime)
    paired = out.paired(pairs)
    stages = {
        f"{regime}: {name}": os.path.join(workdir, regime, "train", name)
        for regime in config.run_regimes
        for name in config.run_variants
    }
    learning = {name: learning_curve(folder) for name, folder in stages.items()}
    figures = plots(workdir, curves)
    figures.append(
        learning_curve_figure(learning, os.path.join(workdir, "plots", "learning_curves.png"))
    )
    regimes = ", ".join(
        f"{r} (walk-scan noise {s.regimes[r].noise_db} dB, dropout {s.regimes[r].dropout})"
        for r in config.run_regimes
    )
    title = (
        f"synthetic world, {s.n_floors} floors, {n} reference points ({s.rp_spacing_m} m grid), "
        f"{s.n_aps} APs, {s.moved_aps} moved; {walk.kind} walks of {walk.length} scans; "
        f"regimes {regimes}; seeds {list(seeds)}, each its own world, surveys, noise, walks and "
        "initialisation"
    )
    constants = StandardConstants.from_config(config.get("eval"))
    write_results(
        workdir,
        title,
        config,
        out.rows,
        METRIC_COLUMNS,
        tables={PAIRED_TABLE: table(paired, PAIR_COLUMNS), **standard_tables(out.rows, constants)},
        standard_metrics=dataclasses.asdict(constants),
        kalman_chosen=kalman,
        learning_curves=learning,
        per_point_error_m={k: {m: v.tolist() for m, v in d.items()} for k, d in curves.items()},
        plots=figures,
    )
    return {
        "rows": out.rows,
        "paired": paired,
        "per_point": curves,
        "kalman_chosen": kalman,
        "learning_curves": learning,
    }


# --- protocol: month by month on the UJI long-term library set ----------------------------------
POLICIES = ("month-1 map and weights", "new map untrained", "fine-tuned")


READOUT = "top-k readout"  # ours: `predict.expected_position`, k from config.readout_k


def per_seed_choice(per_option: Sequence[dict[str, Any]], pick: np.ndarray) -> dict[str, Any]:
    """Scores where seed s takes option pick[s]'s (the options' pooled scores, per seed)."""
    chosen = {
        key: np.stack([per_option[i][key][s] for s, i in enumerate(pick)])
        for key in ("mean_m", "p95_m", "floor_hit")
    }
    chosen["standard"] = {
        field: np.stack([per_option[i]["standard"][field][s] for s, i in enumerate(pick)])
        for field in per_option[0]["standard"]
    }
    return chosen


def span(months: Sequence[int]) -> str:
    return f"months {min(months):02d}-{max(months):02d}"


def drift_pairs(first: int, reported: Sequence[int]) -> list[tuple[str, str, str]]:
    """(name, row A, row B): Table 1's ordering in the first month; over the reported months
    (pooled) what the rebuilt map and the fine-tune give, the policy chosen on the validation
    months, and FPN against the Kalman fingerprint and the plain LSTM."""
    f, r = f"month {first:02d}", span(reported)
    pairs = [(f"{f}: fpn - {other}", f"{f} fpn", f"{f} {other}") for other in COMPARED_WITH_FPN]
    pairs += [
        (
            f"{r}: fpn fine-tuned - fpn untrained",
            f"{r} fpn, fine-tuned",
            f"{r} fpn, new map untrained",
        ),
        (
            f"{r}: fpn untrained - fpn month-{first} map",
            f"{r} fpn, new map untrained",
            f"{r} fpn, month-1 map and weights",
        ),
        (f"{r}: fpn fine-tuned - Kalman", f"{r} fpn, fine-tuned", f"{r} Kalman"),
        (f"{r}: fpn fine-tuned - nearest RP", f"{r} fpn, fine-tuned", f"{r} nearest RP"),
        (
            f"{r}: fpn fine-tuned - plain_lstm fine-tuned",
            f"{r} fpn, fine-tuned",
            f"{r} plain_lstm, fine-tuned",
        ),
        (f"{r}: fpn chosen policy - Kalman", f"{r} fpn, chosen policy", f"{r} Kalman"),
        (
            f"{r}: fpn fine-tuned, {READOUT} - fpn fine-tuned",
            f"{r} fpn, fine-tuned, {READOUT}",
            f"{r} fpn, fine-tuned",
        ),
        (f"{r}: fpn fine-tuned, {READOUT} - WkNN", f"{r} fpn, fine-tuned, {READOUT}", f"{r} WkNN"),
        (
            f"{r}: fpn chosen policy - plain_lstm chosen policy",
            f"{r} fpn, chosen policy",
            f"{r} plain_lstm, chosen policy",
        ),
    ]
    return pairs


def run_drift(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    check_config(config)
    d, walk, seeds = config.data, config.walk, tuple(config.seeds)
    validation = [int(m) for m in d.validation_months]
    reported = [int(m) for m in d.months if int(m) not in validation]
    if not set(validation) <= set(d.months) or not validation or not reported:
        raise ConfigError(
            f"config.data.validation_months: expected a non-empty part of data.months "
            f"{list(d.months)} that leaves months to report, got {validation}"
        )
    first = load_month(d, d.first_month, "trn")
    points = ReferencePoints.of(first)
    data = {k: v for k, v in d.to_dict().items() if k != "months"}
    shared = {"data": data, "radio_map": config.radio_map.to_dict(), "seeds": list(seeds)}
    study = Study(config, workdir, points, shared, buildings=first.building is not None)
    months = [d.first_month, *d.months]
    maps, databases, tests, walks, previous = {}, {}, {}, {}, None
    for m in months:  # one real set: every seed reads the same scans and maps
        databases[m] = first if m == d.first_month else load_month(d, m, "trn", first)
        previous = study.map_of(databases[m], previous)
        maps[m] = [previous] * len(seeds)
        tests[m] = load_month(d, m, "tst", first)
        walks[m] = study.test_walks([study.scans(tests[m])] * len(seeds), f"month {m:02d}")
    out, scores = Evaluation(seeds), {}

    def add(name: str, found: dict[str, Any], seconds: float | None = None) -> None:
        out.add(name, found, seconds)
        scores[name] = found

    chosen_policy: dict[str, list[str]] = {}
    ks = [int(k) for k in config.readout_k]
    if any(k < 1 for k in ks):
        raise ConfigError(f"config.readout_k: expected k >= 1 for each, got {ks}")
    readouts: dict[tuple[str, int], dict[int, dict[str, Any]]] = {}
    chosen_k: dict[str, list[int]] = {}
    readout_val: dict[str, dict[str, list[float]]] = {}  # {name: {k: per-seed validation mean}}
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
        add(
            f"month {d.first_month:02d} {name}",
            study.network_scores(month1, variant, walks[d.first_month], maps[d.first_month]),
        )
        for m in d.months:
            p = f"month {m:02d} {name}"
            if variant.net.use_map:
                stale = study.network_scores(month1, variant, walks[m], maps[d.first_month])
                add(f"{p}, month-1 map and weights", stale)
            add(f"{p}, new map untrained", study.network_scores(states, variant, walks[m], maps[m]))
            states, seconds = study.fine_tune(
                f"adapt/{name}/month{m:02d}",
                f"month {m:02d}",
                variant,
                states,
                maps[m],
                [study.scans(databases[m])] * len(seeds),
            )
            if ks:  # one pass: its k = 1 is the paper's argmax readout
                tops = study.readout_scores(states, variant, walks[m], maps[m], sorted({1, *ks}))
                readouts[name, m] = {k: tops[k] for k in ks}
                add(f"{p}, fine-tuned", tops[1], seconds)
            else:
                add(
                    f"{p}, fine-tuned",
                    study.network_scores(states, variant, walks[m], maps[m]),
                    seconds,
                )
        # The policy (which map and weights to deploy) is chosen per seed on the validation months.
        policies = [q for q in POLICIES if f"month {validation[0]:02d} {name}, {q}" in scores]
        val_error = np.stack(
            [
                pooled([scores[f"month {m:02d} {name}, {q}"] for m in validation])["mean_m"]
                for q in policies
            ]
        )  # (policies, S)
        pick = val_error.argmin(0)
        chosen_policy[name] = [policies[i] for i in pick]
        per_policy = [
            pooled([scores[f"month {m:02d} {name}, {q}"] for m in reported], study.standard_of)
            for q in policies
        ]
        add(f"{span(reported)} {name}, chosen policy", per_seed_choice(per_policy, pick))
        if ks:  # ours: the off-grid readout's k, chosen per seed on the validation months
            val_error = np.stack(
                [pooled([readouts[name, m][k] for m in validation])["mean_m"] for k in ks]
            )  # (ks, S)
            pick = val_error.argmin(0)
            chosen_k[name] = [ks[i] for i in pick]
            readout_val[name] = {str(k): e.tolist() for k, e in zip(ks, val_error, strict=True)}
            per_k = [
                pooled([readouts[name, m][k] for m in reported], study.standard_of) for k in ks
            ]
            add(f"{span(reported)} {name}, fine-tuned, {READOUT}", per_seed_choice(per_k, pick))
    # The Kalman stds are chosen per seed on the validation months' walks.
    val_kalman = [study.kalman_errors(walks[m], maps[m]) for m in validation]
    grid = list(val_kalman[0])
    total = np.stack([sum(e[g] for e in val_kalman) for g in grid])  # (G, S)
    kalman = [grid[i] for i in total.argmin(0)]
    for m in months:
        found = study.baseline_scores(
            walks[m], maps[m], [databases[m]] * len(seeds), [tests[m]] * len(seeds), kalman
        )
        for method, sc in found.items():
            add(f"month {m:02d} {method}", sc)
    families = {
        name.split(" ", 2)[2] for name in scores if name.startswith(f"month {reported[0]:02d} ")
    }
    for group in (validation, reported):
        for family in sorted(families):
            rows = [f"month {m:02d} {family}" for m in group]
            if all(r in scores for r in rows):
                add(f"{span(group)} {family}", pooled([scores[r] for r in rows], study.standard_of))
    paired = out.paired(drift_pairs(d.first_month, reported))
    title = (
        f"{first.source}: {len(points)} reference points of month {d.first_month}, "
        f"{first.n_aps} APs; months {list(d.months)}, choices (Kalman stds, deployed map policy) "
        f"on {span(validation)}, {span(reported)} reported; {walk.kind} test walks of "
        f"{walk.length} scans over each month's test scans; seeds {list(seeds)}, each its own "
        "validation split, walks and initialisation (the scans are fixed)"
    )
    rows = dict(sorted(out.rows.items()))
    tables = {PAIRED_TABLE: table(paired, PAIR_COLUMNS), **standard_tables(rows, study.constants)}
    extra = {"kalman_chosen": [list(k) for k in kalman], "policy_chosen": chosen_policy}
    if ks:
        extra.update(readout_k_chosen=chosen_k, readout_validation_m=readout_val)
    extra["learning_curves"] = {
        name: learning_curve(os.path.join(workdir, "train", name)) for name in config.run_variants
    }
    constants = dataclasses.asdict(study.constants)
    write_results(
        workdir, title, config, rows, METRIC_COLUMNS, tables, standard_metrics=constants, **extra
    )
    return {"rows": rows, "paired": paired, **extra}


PROGRAMS = {"synthetic": run_synthetic, "drift": run_drift}


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    os.makedirs(workdir, exist_ok=True)
    return program(config.method, PROGRAMS)(config, workdir)

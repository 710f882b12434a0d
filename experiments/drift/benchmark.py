"""Drift benchmark: GUFU, iToLoc, FPN and WkNN side by side, month by month, on the UJI long-term
library set. A row is a method's mean location error on a reported month's test scans, over seeds,
taken from the method's own drift protocol (docs/drift.md says what each row is):
`wknn static` / `wknn resurveyed` (the long-term kNN protocol's month-1 and same-month references),
`gufu + wknn` (that WkNN on the database `gufu.run.updated_databases` keeps), `itoloc updated`
(`itoloc.drift`) and `fpn fine-tuned` (`fpn.drift`, scored over walks through the test scans).

Each method runs through the months its own drift config runs (default: GUFU and iToLoc months
9-15, their settings chosen on earlier months; FPN months 2-15, its choices on months 2-8); months
9-15 are reported. The mean over the
reported months is each seed's mean of its monthly means; paired differences are against
`wknn static` over the same seeds.

    python experiments/drift/benchmark.py --workdir runs/drift \\
        --config.data.path=/path/to/uji-lib-longterm-months01-15.zip
    python experiments/drift/benchmark.py --size test --workdir runs/drift_test   # shipped cut
    jaxfp report runs/drift                                                       # the tables again

Sizes: "" (the methods' default drift configs, seeds 0-4) and `test` (their test sizes on the
shipped three-month cut, months 2-3 reported, seeds 0-1). `--config.KEY=VALUE` overrides any
field (`--config.fpn.train.num_steps=2000`); `data.path` and `seeds` are set in every method's
section. A rerun with the same workdir resumes: iToLoc and FPN from their checkpoints, GUFU from
each finished seed.

Over ~400 lines: four methods' protocols gathered into one table, its paired differences and a
plot; each method's training stays in its own package.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import ml_collections
import numpy as np

from jaxfp.cli import USER_ERRORS, check_run_config
from jaxfp.common.atomic_files import atomic_path, write_json
from jaxfp.config import (
    ConfigError,
    apply_overrides,
    check_output_folder,
    load_config,
    repo_path,
    sibling,
    variant_settings,
)
from jaxfp.eval.plots import plt
from jaxfp.eval.results import table, write_results
from jaxfp.eval.stats import over_seeds, paired_rows
from jaxfp.methods.baselines import knn_protocols
from jaxfp.methods.fpn import run as fpn_run
from jaxfp.methods.fpn.study import check_config as fpn_check
from jaxfp.methods.gufu import run as gufu_run
from jaxfp.methods.gufu.study import Gufu
from jaxfp.methods.itoloc import run as itoloc_run
from jaxfp.methods.itoloc.study import check_variants as itoloc_check
from jaxfp.train.logging import MetricWriter
from jaxfp.train.optimise import StepLog
from jaxfp.train.workdir import config_as_json, prepare_workdir

HERE = os.path.abspath(__file__)
SIZES = ("", "test")  # checked by jaxfp.config.load_config: an unknown size is an error
STATIC = "wknn static"
RESURVEYED = "wknn resurveyed"
GUFU = "gufu + wknn"
ITOLOC = "itoloc updated"
FPN = "fpn fine-tuned"
METHODS = (STATIC, RESURVEYED, GUFU, ITOLOC, FPN)
REPORTED_MONTHS = tuple(range(9, 16))  # the methods' drift configs report these (choices on 2-8)


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    size = "test" if arg == "test" else ""
    c = ml_collections.ConfigDict()
    c.seeds = (0, 1, 2, 3, 4)
    c.data = ml_collections.ConfigDict(
        dict(path=repo_path(__file__, "data", "uji-lib-longterm-months01-15.zip"))
    )
    c.reported_months = REPORTED_MONTHS
    c.run_methods = METHODS
    # Each method's own drift config, at the same size; only the rows compared here run
    c.wknn = sibling(__file__, "../baselines/knn_longterm.py").get_config(size)
    c.gufu = sibling(__file__, "../gufu/longterm.py").get_config(size)
    c.gufu.run_variants = ("gufu",)
    c.itoloc = sibling(__file__, "../itoloc/drift.py").get_config(size)
    c.itoloc.run_variants = ("itoloc",)
    c.itoloc.update_variants = ("itoloc",)
    c.itoloc.wknn_ap_counts = ()
    c.fpn = sibling(__file__, "../fpn/drift.py").get_config(size)
    c.fpn.run_variants = ("fpn",)
    if arg == "test":
        c.seeds = (0, 1)
        c.data.path = repo_path(__file__, "tests", "fixtures", "longterm_mini.zip")
        c.reported_months = (2, 3)
        # GUFU's database is then WkNN's (its test size keeps 3 records per point)
        c.gufu.data.records_per_rp = 0
    return c


# --- the methods' sections, checked before any work -----------------------------------------
def sections(config: ml_collections.ConfigDict) -> dict[str, ml_collections.ConfigDict]:
    """Each method's config with the benchmark's data path and seeds; refuses reported months a
    method does not run and rows it does not know."""
    unknown = set(config.run_methods) - set(METHODS)
    if unknown or not config.run_methods:
        raise ConfigError(
            f"config.run_methods: expected some of {METHODS}, got {config.run_methods}"
        )
    reported = [int(m) for m in config.reported_months]
    if not reported or len(set(reported)) != len(reported) or min(reported) < 2:
        raise ConfigError(
            f"config.reported_months: expected distinct months after month 1, got {reported}"
        )
    out = {}
    for name in ("wknn", "gufu", "itoloc", "fpn"):
        section = config[name].copy_and_resolve_references()
        with section.unlocked():
            section.data.path = config.data.path
            if name == "wknn":
                section.data.months = (1, *reported)  # the protocol's reference month is read too
            else:
                section.seeds = tuple(config.seeds)
        out[name] = section
    runs = {"gufu": GUFU, "itoloc": ITOLOC, "fpn": FPN}
    for name, row in runs.items():
        months = tuple(out[name].data.months)
        if row in config.run_methods and months and not set(reported) <= set(months):
            raise ConfigError(
                f"config.{name}.data.months: {list(months)} lacks reported months "
                f"{sorted(set(reported) - set(months))}"
            )
    if GUFU in config.run_methods:
        if out["gufu"].data.source != "longterm":
            raise ConfigError("config.gufu.data.source: expected 'longterm'")
        Gufu.check(variant_settings(out["gufu"], "gufu", "gufu"))
    if ITOLOC in config.run_methods:
        itoloc_check(out["itoloc"])
    if FPN in config.run_methods:
        fpn_check(out["fpn"])
    return out


# --- each method's per-seed monthly errors, from its own protocol -----------------------------
PerSeed = dict[int, np.ndarray]  # month -> (seeds,) mean error in metres


def wknn_rows(wknn: ml_collections.ConfigDict, workdir: str, n: int) -> dict[str, PerSeed]:
    """Static and resurveyed WkNN from the long-term kNN protocol (its first variant)."""
    rows = knn_protocols.train_and_evaluate(wknn, os.path.join(workdir, "wknn"))
    variant = next(iter(wknn.variants))
    months = [int(m) for m in wknn.data.months[1:]]

    def of(reference: str) -> PerSeed:
        return {m: np.full(n, rows[f"{m:02d}"][f"{variant}/{reference} mean"]) for m in months}

    return {STATIC: of("first_month"), RESURVEYED: of("same_month")}


def gufu_rows(
    gufu: ml_collections.ConfigDict, wknn: ml_collections.ConfigDict, workdir: str
) -> dict[str, PerSeed]:
    """WkNN (the kNN protocol's variant) on the database GUFU leaves after each month, per seed;
    a finished seed is reused while the settings that shaped it are unchanged."""
    variant = next(iter(wknn.variants.values()))
    per_seed: list[dict[int, float]] = []
    for seed in gufu.seeds:
        folder = os.path.join(workdir, "gufu", f"seed{seed}")
        path = f"{folder}.json"
        wanted = config_as_json(
            {"gufu": gufu_run.shaping(gufu, "gufu", seed), "wknn": variant.to_dict()}
        )
        if os.path.exists(path):
            with open(path) as f:
                saved = json.load(f)
            if saved.get("shaping") == wanted:
                print(f"[drift] gufu, seed {seed}: finished earlier, reused", flush=True)
                per_seed.append({int(m): e for m, e in saved["months"].items()})
                continue
        prepare_workdir(folder, wanted)
        writer = MetricWriter(folder)
        writer.truncate_after(0)  # an unfinished earlier attempt restarts from month 1
        start, errors = time.perf_counter(), {}
        try:
            for period, database in gufu_run.updated_databases(gufu, "gufu", seed, StepLog(writer)):
                queries = period.batch  # the month's test scans: GUFU's unlabelled batch
                aps = list(dict.fromkeys([*queries.ap_ids.tolist(), *database.ap_ids.tolist()]))
                report, _ = knn_protocols.run_variant(
                    database.select_aps(aps), queries.select_aps(aps), variant, wknn
                )
                errors[period.number] = float(report["mean"])
                print(
                    f"[drift] gufu, seed {seed}, month {period.number:02d}: WkNN "
                    f"{errors[period.number]:.2f} m",
                    flush=True,
                )
        finally:
            writer.close()
        print(f"[drift] gufu, seed {seed}: {time.perf_counter() - start:.0f} s", flush=True)
        write_json(path, {"shaping": wanted, "months": errors}, indent=1)
        per_seed.append(errors)
    months = sorted(set.intersection(*(set(e) for e in per_seed)))
    return {GUFU: {m: np.array([e[m] for e in per_seed]) for m in months}}


def protocol_rows(
    rows: dict[str, dict[str, Any]], months: Sequence[int], row: str, seeds: Sequence[int]
) -> PerSeed:
    """A protocol's per-seed mean errors of its rows `month MM {row}`, for the months it has."""
    named = {m: rows.get(f"month {m:02d} {row}") for m in months}
    return {
        m: np.array([r["per_seed_mean_m"][str(s)] for s in seeds], np.float64)
        for m, r in named.items()
        if r is not None
    }


def itoloc_rows(itoloc: ml_collections.ConfigDict, workdir: str) -> dict[str, PerSeed]:
    """iToLoc's `updated` rows (its first update variant) from its drift protocol."""
    found = itoloc_run.train_and_evaluate(itoloc, os.path.join(workdir, "itoloc"))["rows"]
    row = f"{itoloc.update_variants[0]}, updated"
    return {ITOLOC: protocol_rows(found, itoloc.data.months, row, itoloc.seeds)}


def fpn_rows(fpn: ml_collections.ConfigDict, workdir: str) -> dict[str, PerSeed]:
    """FPN's `fine-tuned` rows (its first network) from its drift protocol."""
    found = fpn_run.train_and_evaluate(fpn, os.path.join(workdir, "fpn"))["rows"]
    row = f"{fpn.run_variants[0]}, fine-tuned"
    return {FPN: protocol_rows(found, fpn.data.months, row, fpn.seeds)}


# --- the tables and the plot ------------------------------------------------------------------
COLUMNS = ["mean_m", "mean_m_ci_low", "mean_m_ci_high", "n_seeds"]
PAIR_COLUMNS = ["diff_m", "diff_m_ci_low", "diff_m_ci_high", "n_seeds", "verdict"]
BY_MONTH_TABLE = "mean error by month (m, mean over seeds)"
PAIRED_TABLE = f"paired differences against {STATIC} over seeds (A - B, m; negative: A better)"
ROWS_TABLE = "where each row comes from"
PLOT = "error_by_month.png"


def months_label(months: Sequence[int]) -> str:
    """'months 09-15' for consecutive months, else 'months 02, 05'."""
    ms = sorted(months)
    if ms == list(range(ms[0], ms[-1] + 1)) and len(ms) > 1:
        return f"months {ms[0]:02d}-{ms[-1]:02d}"
    return "month" + "s" * (len(ms) > 1) + " " + ", ".join(f"{m:02d}" for m in ms)


def tables(
    errors: dict[str, PerSeed], reported: Sequence[int], seeds: Sequence[int]
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """(main rows: each method per month and over the months; the by-month means; the paired
    differences against static WkNN)."""
    per_row: dict[str, np.ndarray] = {}
    for m in reported:
        for method, by_month in errors.items():
            per_row[f"month {m:02d} {method}"] = by_month[m]
    span = months_label(reported)
    for method, by_month in errors.items():
        per_row[f"{span} {method}"] = np.mean([by_month[m] for m in reported], 0)
    rows = {}
    for name, values in per_row.items():
        rows[name] = over_seeds(values, "mean_m")
        rows[name]["per_seed_mean_m"] = {
            str(s): float(v) for s, v in zip(seeds, values, strict=True)
        }
    by_month = {
        method: {
            **{f"{m:02d}": rows[f"month {m:02d} {method}"]["mean_m"] for m in reported},
            "mean": rows[f"{span} {method}"]["mean_m"],
        }
        for method in errors
    }
    pairs = [
        (f"{at}: {method} - {STATIC}", f"{at} {method}", f"{at} {STATIC}")
        for at in [*(f"month {m:02d}" for m in reported), span]
        for method in errors
        if method != STATIC
    ]
    return rows, by_month, paired_rows(per_row, pairs, "diff_m")


def plot(
    rows: dict[str, dict[str, Any]], methods: Sequence[str], reported: Sequence[int], path: str
) -> str:
    """Mean error per month per method, with each mean's t-interval over seeds as a bar."""
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    for i, method in enumerate(methods):
        found = [rows[f"month {m:02d} {method}"] for m in reported]
        mean = np.array([r["mean_m"] for r in found])
        low = np.array([r["mean_m_ci_low"] for r in found])
        high = np.array([r["mean_m_ci_high"] for r in found])
        bars = np.nan_to_num(np.stack([mean - low, high - mean]))  # none where n < 2
        shift = 0.06 * (i - (len(methods) - 1) / 2)  # keeps overlapping bars apart
        ax.errorbar(
            np.asarray(reported) + shift, mean, yerr=bars, marker="o", capsize=3, label=method
        )
    ax.set_xticks(list(reported), [f"{m:02d}" for m in reported])
    ax.set_xlabel("month")
    ax.set_ylabel("mean location error (m)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("error per month (mean over seeds, Student-t 95% interval)", fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


def protocol_table(config: ml_collections.ConfigDict, parts: dict[str, Any]) -> dict[str, Any]:
    """Each row's source protocol, the months it went through and what it is scored on."""
    gufu_months = list(parts["gufu"].data.months) or "every month after month 1"
    fpn, test = parts["fpn"].data, "each month's test scans"
    out = {
        STATIC: ("baselines.knn longterm, first_month", "none (month 1's survey)", test),
        RESURVEYED: ("baselines.knn longterm, same_month", "each its own survey", test),
        GUFU: ("gufu.run.updated_databases + WkNN", gufu_months, test),
        ITOLOC: ("itoloc.drift, updated", list(parts["itoloc"].data.months), test),
        FPN: (
            "fpn.drift, fine-tuned",
            f"{list(fpn.months)} (choices on {list(fpn.validation_months)})",
            f"walks of {parts['fpn'].walk.length} scans through each month's test scans",
        ),
    }
    return {
        k: dict(zip(["protocol", "months run", "scored on"], map(str, v), strict=True))
        for k, v in out.items()
        if k in config.run_methods
    }


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Every method of `config.run_methods` through its drift protocol, then results.json (the
    tables) and the plot in `workdir`."""
    parts = sections(config)
    os.makedirs(workdir, exist_ok=True)
    seeds, reported = tuple(config.seeds), [int(m) for m in config.reported_months]
    found: dict[str, PerSeed] = {}
    if {STATIC, RESURVEYED} & set(config.run_methods):
        found.update(wknn_rows(parts["wknn"], workdir, len(seeds)))
    if GUFU in config.run_methods:
        found.update(gufu_rows(parts["gufu"], parts["wknn"], workdir))
    if ITOLOC in config.run_methods:
        found.update(itoloc_rows(parts["itoloc"], workdir))
    if FPN in config.run_methods:
        found.update(fpn_rows(parts["fpn"], workdir))
    methods = [m for m in METHODS if m in config.run_methods]
    errors = {m: found[m] for m in methods}
    for method, by_month in errors.items():
        missing = sorted(set(reported) - set(by_month))
        if missing:
            raise ConfigError(
                f"{method}: its protocol ran no month {missing} (config.reported_months)"
            )
    rows, by_month, paired = tables(errors, reported, seeds)
    figure = plot(rows, methods, reported, os.path.join(workdir, PLOT))
    title = (
        f"{os.path.basename(config.data.path)}: month 1 is every method's starting point; "
        f"{months_label(reported)} reported; mean location error of each month's test scans (m); "
        f"seeds {list(seeds)}"
    )
    write_results(
        workdir,
        title,
        config,
        rows,
        COLUMNS,
        {
            BY_MONTH_TABLE: table(by_month, [*(f"{m:02d}" for m in reported), "mean"]),
            PAIRED_TABLE: table(paired, PAIR_COLUMNS),
            ROWS_TABLE: table(
                protocol_table(config, parts), ["protocol", "months run", "scored on"]
            ),
        },
        seed_varies=(
            "each method's own draws: GUFU's and iToLoc's initialisations and update draws, "
            "FPN's validation split, walks and initialisation (WkNN draws nothing: one value for "
            "every seed)"
        ),
        plot=os.path.basename(figure),
    )
    return {"rows": rows, "by_month": by_month, "paired": paired, "plot": figure}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="", help="'' (the default) or test")
    parser.add_argument("--workdir", required=True)
    args = parser.parse_args([a for a in argv if not a.startswith("--config.")])
    overrides = [a for a in argv if a.startswith("--config.")]
    try:
        check_output_folder(args.workdir, "--workdir")
        config = apply_overrides(load_config(f"{HERE}:{args.size}"), overrides)
        check_run_config(config)
        run(config, args.workdir)
    except USER_ERRORS as err:
        print(f"benchmark: error: {err}", file=sys.stderr)
        return 2
    print(f"outputs in {os.path.abspath(args.workdir)}; tables again: jaxfp report {args.workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""kNN/WkNN experiments: a train/test split, or month by month on the UJI long-term set.

Config (see experiments/knn_*.py): `data` (path, format, train/test parts or long-term months),
`variants` (name -> k, weighted, metric, representation), `eval.success_radius_m`, `query_chunk`;
`eval` may also set the ISO/IEC 18305 and IPIN constants (`eval.iso18305.StandardConstants`).
Where the queries have floors, each row also carries those metrics, shown in a table of their own.
"""

from __future__ import annotations

import dataclasses
import os
import time

import ml_collections
import numpy as np

from jaxfp.config import ConfigError
from jaxfp.data.longterm import load_longterm
from jaxfp.data.registry import load_parts
from jaxfp.data.types import FingerprintSet, concat
from jaxfp.eval.iso18305 import StandardConstants, standard_report, standard_table
from jaxfp.eval.metrics import position_errors, positioning_report
from jaxfp.eval.plots import cdf_plot, radio_map_plot
from jaxfp.eval.results import table, write_results
from jaxfp.methods.baselines.knn import build_index, predict

TABLE_COLUMNS = (
    "mean",
    "mean_ci_low",
    "mean_ci_high",
    "p50",
    "p67",
    "p80",
    "p90",
    "p95",
    "floor_hit_rate",
    "building_hit_rate",
    "queries_per_s",
)


# The standard metrics shown month by month (every field is in `details`).
LONGTERM_STANDARD = ("3d_mean", "ipin_mean", "ipin_p75")


def variant_config(
    k: int, weighted: bool, representation: str, metric: str = "euclidean"
) -> ml_collections.ConfigDict:
    """One entry of `config.variants`."""
    return ml_collections.ConfigDict(
        dict(k=k, weighted=weighted, representation=representation, metric=metric)
    )


def run_variant(
    reference: FingerprintSet, queries: FingerprintSet, variant: ml_collections.ConfigDict, config
) -> tuple[dict[str, float], np.ndarray]:
    """Fit, predict and score one kNN variant; returns (report, per-query errors)."""
    min_rss = variant.get("min_rss")
    index = build_index(reference, variant.representation, min_rss)
    kwargs = dict(
        k=variant.k, weighted=variant.weighted, metric=variant.metric, chunk=config.query_chunk
    )
    predict(index, queries, **kwargs)  # compile outside the clock
    start = time.perf_counter()
    out = predict(index, queries, **kwargs)
    seconds = time.perf_counter() - start
    report = positioning_report(
        out["xy"],
        queries.xy,
        out["floor"] if queries.floor is not None else None,
        queries.floor,
        out["building"] if queries.building is not None else None,
        queries.building,
        success_radius_m=config.eval.success_radius_m,
        seed=config.seed,
    )
    report["queries_per_s"] = queries.n / seconds
    if queries.floor is not None:
        report.update(
            standard_report(
                out["xy"],
                queries.xy,
                out["floor"],
                queries.floor,
                out["building"] if queries.building is not None else None,
                queries.building,
                StandardConstants.from_config(config.eval),
            )
        )
    return report, position_errors(out["xy"], queries.xy)


def _split_protocol(config, workdir: str) -> dict[str, dict[str, float]]:
    data = config.data
    reference = load_parts(data.path, list(data.train), data.format)
    queries = load_parts(data.path, list(data.test), data.format).aligned_to(reference)
    rows, errors = {}, {}
    for name, variant in config.variants.items():
        rows[name], errors[name] = run_variant(reference, queries, variant, config)
    constants = StandardConstants.from_config(config.eval)
    cdf_plot(errors, os.path.join(workdir, "cdf.png"), title=os.path.basename(data.path))
    strongest = int(np.argmax(reference.detected.sum(0)))
    radio_map_plot(
        reference.xy,
        reference.rss[:, strongest],
        os.path.join(workdir, "radio_map.png"),
        title=f"{os.path.basename(data.path)}: AP {reference.ap_ids[strongest]} (reference set)",
    )
    write_results(
        workdir,
        f"{data.path}: {reference.n} references, {queries.n} queries, {reference.n_aps} APs",
        config,
        rows,
        [c for c in TABLE_COLUMNS if any(c in r for r in rows.values())],
        standard_table(rows, constants),
        reference=reference.summary(),
        queries=queries.summary(),
        standard_metrics=dataclasses.asdict(constants),
    )
    return rows


def _longterm_protocol(config, workdir: str) -> dict[str, dict[str, float]]:
    data = config.data
    sets = load_longterm(data.path, months=list(data.months) or None)
    months = sorted({int(k[:2]) for k in sets})

    def month_set(month: int, kind: str) -> FingerprintSet:
        return concat([v for k, v in sets.items() if k.startswith(f"{month:02d}/{kind}")])

    first = month_set(data.reference_month, "trn")
    rows: dict[str, dict[str, float]] = {}
    standard: dict[str, dict[str, float]] = {}
    details: dict[str, dict[str, dict[str, float]]] = {}
    for month in months:
        queries = month_set(month, "tst")
        references = {"first_month": first, "same_month": month_set(month, "trn")}
        rows[f"{month:02d}"] = {"queries": queries.n}
        for name, variant in config.variants.items():
            for ref_name, reference in references.items():
                report, _ = run_variant(reference, queries, variant, config)
                details.setdefault(f"{month:02d}", {})[f"{name}/{ref_name}"] = report
                rows[f"{month:02d}"][f"{name}/{ref_name} mean"] = report["mean"]
                rows[f"{month:02d}"][f"{name}/{ref_name} floor"] = report["floor_hit_rate"]
                for key in LONGTERM_STANDARD:
                    if key in report:
                        standard.setdefault(f"{month:02d}", {})[f"{name}/{ref_name} {key}"] = (
                            report[key]
                        )
    columns = list(dict.fromkeys(k for r in rows.values() for k in r))
    title = f"{data.path}: months {months}, reference month {data.reference_month:02d}"
    constants = StandardConstants.from_config(config.eval)
    tables = {}
    if standard:
        standard_columns = list(dict.fromkeys(k for r in standard.values() for k in r))
        tables[constants.caption()] = table(standard, standard_columns)
    write_results(
        workdir,
        title,
        config,
        rows,
        columns,
        tables,
        details=details,
        standard_metrics=dataclasses.asdict(constants),
    )
    return rows


def train_and_evaluate(
    config: ml_collections.ConfigDict, workdir: str
) -> dict[str, dict[str, float]]:
    """Run the configured protocol, write results.json (and plots) into `workdir`, return the rows."""
    os.makedirs(workdir, exist_ok=True)
    if config.data.protocol == "split":
        return _split_protocol(config, workdir)
    if config.data.protocol == "longterm":
        return _longterm_protocol(config, workdir)
    raise ConfigError(
        f"config.data.protocol: expected 'split' or 'longterm', got {config.data.protocol!r}"
    )

"""The demo (`baselines.demo`): kNN/WkNN variants and the MLP regressor's seeds (one vmapped program)
on one split, each in its own folder, and one table of both (with the ISO/IEC 18305 and IPIN metrics
in a second table where the set has floors)."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import ml_collections

from jaxfp.eval.iso18305 import StandardConstants, standard_table
from jaxfp.eval.results import write_results
from jaxfp.methods.baselines import knn_protocols, mlp

COLUMNS = ("mean", "mean_ci_low", "mean_ci_high", "p50", "p80", "p90")


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    knn_rows = knn_protocols.train_and_evaluate(config.knn, os.path.join(workdir, "knn"))
    mlp_rows = mlp.train_and_evaluate(config.mlp, os.path.join(workdir, "mlp"))
    rows = {**knn_rows}
    rows.update({f"mlp {name}": row for name, row in mlp_rows.items()})
    title = (
        f"{config.knn.data.path}: kNN/WkNN and the MLP regressor (seeds {list(config.mlp.seeds)}, "
        "one vmapped program; mean over seeds with its CI across seeds)"
    )
    constants = StandardConstants.from_config(config.knn.get("eval"))
    write_results(
        workdir,
        title,
        config,
        rows,
        COLUMNS,
        standard_table(rows, constants),
        standard_metrics=dataclasses.asdict(constants),
    )
    return rows

"""The demo (`baselines.demo`): kNN/WkNN variants and the MLP regressor's seeds (one vmapped program)
on one split, each in its own folder, and one table of both."""

from __future__ import annotations

import os
from typing import Any

import ml_collections

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
    write_results(workdir, title, config, rows, COLUMNS)
    return rows

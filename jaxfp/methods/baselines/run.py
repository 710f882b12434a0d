"""`config.method`: `baselines.knn` (kNN/WkNN variants on a split or month by month),
`baselines.mlp` (the MLP regressor, several seeds as one program) or `baselines.demo` (both)."""

from __future__ import annotations

from typing import Any

import ml_collections

from jaxfp.methods import program
from jaxfp.methods.baselines import demo, knn_protocols, mlp


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    programs = {
        "knn": knn_protocols.train_and_evaluate,
        "mlp": mlp.train_and_evaluate,
        "demo": demo.train_and_evaluate,
    }
    return program(config.method, programs)(config, workdir)

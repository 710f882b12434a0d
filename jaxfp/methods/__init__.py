"""One module per method; `get_method(name)` finds its `train_and_evaluate(config, workdir)`."""

from __future__ import annotations

import importlib
from collections.abc import Callable

METHODS = {
    "knn": "jaxfp.methods.knn_run",
    "mlp": "jaxfp.methods.mlp_regressor",
    "csi_supervised": "jaxfp.methods.csi_supervised",
    "csi_suite": "jaxfp.methods.csi_suite",
    "gufu": "jaxfp.methods.gufu",
}


def get_method(name: str) -> Callable:
    if name not in METHODS:
        raise KeyError(f"method: expected one of {sorted(METHODS)}, got {name!r}")
    return importlib.import_module(METHODS[name]).train_and_evaluate

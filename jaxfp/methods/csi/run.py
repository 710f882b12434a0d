"""`config.method`: `csi.table1` (backbones, supervised on the labelled 10%) or `csi.few_labels`
(Table II / Fig. 4: semi-supervised methods, ensembles, sector heads)."""

from __future__ import annotations

from typing import Any

import ml_collections

from jaxfp.methods import program
from jaxfp.methods.csi import few_labels, table1


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    programs = {"table1": table1.train_and_evaluate, "few_labels": few_labels.train_and_evaluate}
    return program(config.method, programs)(config, workdir)

"""The labelled-only rows: stage 1 / the supervised baseline (Table I, Table II's start), the
labelled-only control at the budget's steps, the decoupled sector heads (§III-C) and the
training-free signature WkNN baseline (ours). Each returns positions in metres per scored part,
{'test' | 'unlabelled': (seeds, rows, 2)}.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jaxfp.methods.csi import losses, pseudo_labels
from jaxfp.methods.csi.budget import row_steps
from jaxfp.methods.csi.study import Study
from jaxfp.train.state import TrainState
from jaxfp.train.steps import make_train_step


def run_supervised(
    s: Study, backbone: str | None = None, stage: str = "supervised", steps: int | None = None
) -> tuple[Any, TrainState]:
    """Stage 1 / the supervised baseline: `backbone` (default config.backbone) on each seed's
    labelled rows for `steps` (default config.train.num_steps); with the budget's steps it is the
    labelled-only control `supervised_budget`."""
    c = s.config
    model = s.model(backbone or c.backbone, c.width)
    state = supervised_stage(
        s,
        stage,
        model,
        c.optimizer.learning_rate,
        *s.labelled_targets(),
        upstream=backbone,
        steps=steps,
    )
    return model, state


def run_supervised_budget(s: Study) -> dict[str, np.ndarray]:
    """The labelled-only control: stage 1's network and data for the budget's steps."""
    steps = row_steps(s.config)["supervised_budget"]
    return s.scored_positions(*run_supervised(s, stage="supervised_budget", steps=steps))


def supervised_stage(
    s: Study,
    stage: str,
    model,
    learning_rate: float,
    targets: np.ndarray,
    weights: np.ndarray,
    pools: list[np.ndarray],
    steps: int | None = None,
    **train_options: Any,
) -> TrainState:
    """A fresh `model` trained with the supervised loss on the (pooled) rows, as stage `stage`,
    for `steps` (default config.train.num_steps)."""
    steps = int(s.config.train.num_steps if steps is None else steps)
    loss = losses.make_supervised_loss(model, s.prep, s.geometry)
    init = s.initial(model, s.optimizer(learning_rate, steps))
    step = make_train_step(loss, jit=False)
    return s.train(stage, init, step, steps, targets, weights, pools, **train_options)


def run_signature_wknn(s: Study) -> dict[str, np.ndarray]:
    """Interpolation A on its own, a baseline without training: each receiver's position interpolated
    over the seed's labelled receivers of its sector in the TA-invariant CSI signature (the
    consistency section's k and signature bins)."""
    k = s.config.consistency.k
    labelled = s.parts["labelled"]
    out: dict[str, np.ndarray] = {}
    for part in s.scored:
        per_seed = []
        for m in range(s.n):
            signature, rows, anchors = s.signatures(m), s.parts[part][m], labelled[m]
            per_seed.append(
                pseudo_labels.profile_labels(
                    signature[rows],
                    s.table.sector[rows],
                    signature[anchors],
                    s.table.sector[anchors],
                    s.table.xy[anchors],
                    k,
                )
            )
        out[part] = np.stack(per_seed)
    return out


def run_sector_heads(s: Study) -> dict[str, np.ndarray]:
    """One backbone, a head per sector, trained for the budget's steps with sector rotation (and, with
    sector.consistency_weight > 0, the rotation consistency on unlabelled rows)."""
    c, h = s.config, s.config.sector
    model = s.model(c.backbone, c.width, heads=len(s.geometry.azimuths_rad))
    steps = row_steps(c)["sector_heads"]
    tx = s.optimizer(c.optimizer.learning_rate, steps)
    loss = losses.make_supervised_loss(
        model, s.prep, s.geometry, h.rotated_weight, h.consistency_weight
    )
    state = s.train(
        "sector_heads",
        s.initial(model, tx),
        make_train_step(loss, jit=False),
        steps,
        *s.labelled_targets(),
        sections=("sector",),
        unlabelled=h.consistency_weight > 0,
    )
    return s.scored_positions(model, state)

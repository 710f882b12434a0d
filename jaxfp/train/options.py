"""The small typed options the training core takes (never the experiment config)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any


@dataclasses.dataclass(frozen=True)
class LoopOptions:
    """`fit`: steps, how often to log / evaluate / checkpoint, the run key's seed.

    `eval_every` 0 evaluates at the end only; `checkpoint_every` 0 saves at the end only."""

    num_steps: int
    batch_size: int = 1
    log_every: int = 100
    eval_every: int = 0
    checkpoint_every: int = 0
    max_to_keep: int = 3
    seed: int = 0

    @classmethod
    def from_config(cls, train: Mapping[str, Any], seed: int = 0, **overrides: Any) -> LoopOptions:
        """Options from a `config.train`-like mapping (unknown keys ignored), with overrides."""
        return _from_mapping(cls, train, seed, overrides)


@dataclasses.dataclass(frozen=True)
class EpochOptions:
    """`fit_members`: epochs, epochs per compiled call (one checkpoint each), the run key's seed."""

    num_epochs: int
    epochs_per_call: int
    max_to_keep: int = 3
    seed: int = 0

    @classmethod
    def from_config(cls, train: Mapping[str, Any], seed: int = 0, **overrides: Any) -> EpochOptions:
        return _from_mapping(cls, train, seed, overrides)


def _from_mapping(cls, mapping: Mapping[str, Any], seed: int, overrides: Mapping[str, Any]):
    names = {f.name for f in dataclasses.fields(cls)}
    values = {k: mapping[k] for k in names if k in mapping}
    values.update(seed=seed, **overrides)
    return cls(**values)

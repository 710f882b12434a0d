"""Run a compiled function over fixed-size chunks of rows: the last chunk is padded, so the
function compiles once, and the padding is stripped from what comes back."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import numpy as np


def pad_rows(block: np.ndarray, size: int) -> np.ndarray:
    """`block` with zero rows appended up to `size` rows."""
    missing = size - len(block)
    if missing <= 0:
        return block
    return np.concatenate([block, np.zeros((missing, *block.shape[1:]), block.dtype)])


def map_chunks(
    fn: Callable[[np.ndarray, int], Any],
    rows: np.ndarray,
    chunk: int,
    axis: int = 0,
) -> Any:
    """`fn(padded_chunk, start)` for each chunk of `rows`; outputs (arrays or dicts of arrays) are
    fetched to the host, stripped of padding along `axis` and concatenated along it."""
    chunk = max(1, min(chunk, len(rows)))
    outputs = []
    for start in range(0, len(rows), chunk):
        block = rows[start : start + chunk]
        out = jax.device_get(fn(pad_rows(block, chunk), start))
        outputs.append(jax.tree.map(functools.partial(_first, n=len(block), axis=axis), out))
    if not outputs:
        raise ValueError("map_chunks: no rows")
    return jax.tree.map(lambda *parts: np.concatenate(parts, axis=axis), *outputs)


def _first(value: Any, n: int, axis: int) -> np.ndarray:
    return np.take(np.asarray(value), np.arange(n), axis=axis)

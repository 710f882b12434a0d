"""Files written under a temporary name and renamed when complete: a kill never leaves half a file."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary name beside `path`; rename it onto `path` only if the block succeeds.

    The temporary name is unique per call, so concurrent writers (several datagen shards) never
    share one; a directory works as well as a file.
    """
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    head, tail = os.path.split(path)
    tmp = os.path.join(head, f".{tail}.tmp-{uuid.uuid4().hex}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.exists(tmp):
            os.remove(tmp)


def plain(value: object) -> object:
    """JSON-ready values: numpy scalars and arrays become Python ones, tuples lists, keys strings."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    return value


def write_json(
    path: str | os.PathLike, obj: object, indent: int | None = 2, sort_keys: bool = False
) -> str:
    """`obj` as JSON at `path`, atomically and synced to disk before the rename."""
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(plain(obj), f, indent=indent, sort_keys=sort_keys)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    return os.fspath(path)


def write_text(path: str | os.PathLike, text: str) -> str:
    """`text` at `path`, atomically."""
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    return os.fspath(path)

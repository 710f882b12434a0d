"""An on-disk cache of parsed arrays, keyed by the content of the source files and the parser's
version: a changed source file misses it, and a corrupt entry is dropped with a warning and rebuilt.

Where: `$JAXFP_CACHE_DIR`, else `$XDG_CACHE_HOME/jaxfp`, else `~/.cache/jaxfp`; `JAXFP_CACHE=0`
turns the cache off. An entry is one uncompressed `.npz` under `<dir>/<namespace>/`, written under
a temporary name and renamed when complete, so a killed writer never leaves half an entry.
Callers cache only what passed validation: a bad source file is parsed (and refused) every time.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pathlib
import warnings
import zipfile
from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

import numpy as np

from jaxfp.common.atomic_files import atomic_path

CACHE_DIR_ENV = "JAXFP_CACHE_DIR"
CACHE_ENV = "JAXFP_CACHE"
T = TypeVar("T")
# What reading a broken entry raises (np.load of a truncated or overwritten .npz, a missing array,
# an array that fails the caller's validation).
UNREADABLE = (OSError, ValueError, EOFError, KeyError, IndexError, TypeError, zipfile.BadZipFile)


def cache_dir() -> pathlib.Path | None:
    """The cache folder, or None when `JAXFP_CACHE=0`."""
    if os.environ.get(CACHE_ENV, "1").strip() == "0":
        return None
    if os.environ.get(CACHE_DIR_ENV):
        return pathlib.Path(os.environ[CACHE_DIR_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return pathlib.Path(base).expanduser() / "jaxfp"


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def key_of(*parts: str) -> str:
    """One SHA-256 key of several strings (digests, names, versions)."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


def member_digests(root: str | os.PathLike, names: Iterable[str]) -> dict[str, str]:
    """A content digest per member of a folder or a zip archive (a zip's from its whole bytes, one
    read of the compressed file rather than inflating every member)."""
    root = pathlib.Path(root)
    if root.is_file():
        archive = file_digest(root)
        return {name: key_of(archive, name) for name in names}
    return {name: file_digest(root / name) for name in names}


def _entry(namespace: str, key: str) -> pathlib.Path | None:
    folder = cache_dir()
    return None if folder is None else folder / namespace / f"{key}.npz"


def _drop(path: pathlib.Path, why: str) -> None:
    warnings.warn(
        f"{path}: ignoring an unreadable cache entry ({why}); rebuilding it", stacklevel=3
    )
    with contextlib.suppress(OSError):  # another process may have replaced or removed it
        path.unlink()


def store(namespace: str, key: str, arrays: Mapping[str, np.ndarray]) -> None:
    """Write an entry atomically; a cache that cannot be written is warned about and skipped."""
    path = _entry(namespace, key)
    if path is None:
        return
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)
    except OSError as err:
        warnings.warn(f"{path}: could not write the cache entry ({err})", stacklevel=2)


def cached(
    namespace: str,
    key: str,
    build: Callable[[], tuple[T, Mapping[str, np.ndarray]]],
    restore: Callable[[Mapping[str, np.ndarray]], T],
) -> T:
    """`restore(arrays)` of the entry `key`, or `build()`'s value after storing its arrays.

    `build` parses and validates the source (its errors propagate and nothing is stored);
    `restore` turns stored arrays back into the value and raises on anything inconsistent, which
    counts as a corrupt entry."""
    path = _entry(namespace, key)
    if path is not None and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
            return restore(arrays)
        except UNREADABLE as err:
            _drop(path, f"{type(err).__name__}: {err}")
    value, arrays = build()
    if path is not None:
        store(namespace, key, arrays)
    return value

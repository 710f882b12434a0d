"""On-disk format of a ray-traced CSI data set: chunked, atomic, memory-mapped, combinable.

    ROOT/dataset.json                 format, version, generator config and its hash, receiver count,
                                      chunk size, CSI shape; or {"parts": [...]} naming part roots
                                      (the config's site keys are listed in SITE_KEYS)
    ROOT/chunks/chunk_000042/         one chunk: receivers [42 * chunk_size, 43 * chunk_size)
        csi.npy  complex64 (n, ue_ant, bs_ant, subcarriers)
        xy.npy float64 (n, 2)   los.npy bool (n,)   sector.npy int8 (n,)
        num_paths.npy int32 (n,)   rx_index.npy int64 (n,)
        chunk.json                    count, config hash, sha256/shape/dtype of every file

A chunk is written into a temporary directory and renamed when complete, so a killed writer leaves
only `.chunk_*.tmp*` directories, which readers ignore. Parts written on different machines combine
through a dataset.json that lists them (nothing is copied).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Mapping, Sequence

import numpy as np

from jaxfp.common.atomic_files import write_json
from jaxfp.data.types import DataFormatError, locate

FORMAT = "jaxfp-csi"
VERSION = 1
# Keys every (non-combined) dataset.json holds.
HEADER_KEYS = ("config", "config_hash", "num_receivers", "chunk_size", "num_chunks", "csi_shape")
FIELDS = {
    "csi": np.complex64,
    "xy": np.float64,
    "los": np.bool_,
    "sector": np.int8,
    "num_paths": np.int32,
    "rx_index": np.int64,
}


# Keys of the header's `config` that describe the site, which the CSI experiments read; datagen writes
# them all. Each is checked where present when a store opens; one that is read but absent is named.
SITE_KEYS = {
    "bs_position": "the base station's (x, y, z), metres",
    "sector_azimuths_deg": "the sectors' boresight azimuths, degrees",
    "subcarrier_spacing_hz": "the subcarrier spacing, Hz",
    "srs_comb": "the SRS comb: every how many subcarriers the CSI keeps",
    "ue_height": "the receivers' height, metres",
}
SITE_EXPECTED = {
    "bs_position": "three numbers (x, y, z)",
    "sector_azimuths_deg": "a non-empty list of numbers",
    "srs_comb": "a positive integer",
    "subcarrier_spacing_hz": "a positive number",
    "ue_height": "a positive number",
}
# What the CSI experiments cannot run without (ue_height only feeds the LoS-safe crop).
REQUIRED_SITE_KEYS = ("bs_position", "sector_azimuths_deg", "subcarrier_spacing_hz", "srs_comb")


def _is_number(value: object) -> bool:
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and bool(np.isfinite(value))
    )


def _site_value_ok(key: str, value: object) -> bool:
    if key == "bs_position":
        return isinstance(value, list | tuple) and len(value) == 3 and all(map(_is_number, value))
    if key == "sector_azimuths_deg":
        return isinstance(value, list | tuple) and len(value) > 0 and all(map(_is_number, value))
    if key == "srs_comb":
        return isinstance(value, int) and not isinstance(value, bool) and value > 0
    return _is_number(value) and value > 0  # type: ignore[operator]


class StoreConfig(dict):
    """A store header's `config`: reading a key it lacks raises DataFormatError naming the key and
    the file (not KeyError); `get` and `in` behave as for any dict."""

    def __init__(self, values: Mapping, path: str) -> None:
        super().__init__(values)
        self.path = path
        for key, value in self.items():
            if key in SITE_KEYS and not _site_value_ok(key, value):
                raise DataFormatError(
                    f"{locate(path, field=f'config.{key}')}: expected {SITE_EXPECTED[key]} "
                    f"({SITE_KEYS[key]}), found {value!r}"
                )

    def __missing__(self, key: str) -> object:
        what = f" ({SITE_KEYS[key]})" if key in SITE_KEYS else ""
        raise DataFormatError(
            f"{locate(self.path, field=f'config.{key}')}: expected the site key {key!r}{what} in "
            "the header's config, as datagen writes it; the store lacks it"
        )

    def require(self, keys: Sequence[str] = REQUIRED_SITE_KEYS) -> None:
        """Raise DataFormatError naming every key of `keys` the config lacks."""
        missing = [k for k in keys if k not in self]
        if missing:
            raise DataFormatError(
                f"{locate(self.path, field='config')}: expected the site keys {missing} "
                f"({'; '.join(SITE_KEYS.get(k, k) for k in missing)}), as datagen writes them"
            )


def config_hash(config: Mapping) -> str:
    """Stable hash of a generator config (its JSON with sorted keys)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def chunk_name(chunk_id: int) -> str:
    return f"chunk_{chunk_id:06d}"


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def create_dataset(
    root: str, config: Mapping, num_receivers: int, chunk_size: int, csi_shape: Sequence[int]
) -> dict:
    """Write ROOT/dataset.json, or check that an existing one describes the same data set."""
    os.makedirs(os.path.join(root, "chunks"), exist_ok=True)
    header = {
        "format": FORMAT,
        "version": VERSION,
        "config": config,
        "config_hash": config_hash(config),
        "num_receivers": int(num_receivers),
        "chunk_size": int(chunk_size),
        "num_chunks": -(-int(num_receivers) // int(chunk_size)),
        "csi_shape": [int(s) for s in csi_shape],
    }
    path = os.path.join(root, "dataset.json")
    if os.path.exists(path):
        existing = read_header(root)
        if existing.get("config_hash") != header["config_hash"]:
            raise DataFormatError(
                f"{path}: holds a data set of another config (hash {existing.get('config_hash')}, "
                f"this run {header['config_hash']}); use a new output folder"
            )
        return existing
    write_json(path, header, indent=1, sort_keys=True)
    return header


def read_header(root: str) -> dict:
    path = os.path.join(root, "dataset.json")
    try:
        with open(path) as f:
            header = json.load(f)
    except FileNotFoundError:
        raise DataFormatError(
            f"{path}: expected a dataset.json (is {root} a jaxfp CSI data set?)"
        ) from None
    except json.JSONDecodeError as err:
        raise DataFormatError(f"{path}: expected JSON ({err})") from None
    if "parts" not in header and (
        header.get("format") != FORMAT or header.get("version") != VERSION
    ):
        raise DataFormatError(
            f"{path}: expected format {FORMAT!r} version {VERSION}, found "
            f"{header.get('format')!r} version {header.get('version')!r}"
        )
    missing = [k for k in HEADER_KEYS if k not in header] if "parts" not in header else []
    if missing:
        raise DataFormatError(
            f"{path}: expected the header keys {missing} beside {sorted(header)}, as "
            "create_dataset writes them"
        )
    return header


def write_chunk(root: str, chunk_id: int, arrays: Mapping[str, np.ndarray], header: Mapping) -> str:
    """Write one chunk atomically; returns its directory. An existing complete chunk is kept."""
    final = os.path.join(root, "chunks", chunk_name(chunk_id))
    if os.path.isdir(final):
        return final
    missing = sorted(set(FIELDS) - set(arrays))
    if missing:
        raise ValueError(f"chunk {chunk_id}: missing fields {missing}")
    count = len(arrays["rx_index"])
    tmp = os.path.join(root, "chunks", f".{chunk_name(chunk_id)}.tmp-{uuid.uuid4().hex}")
    os.makedirs(tmp)
    files = {}
    for name, dtype in FIELDS.items():
        value = np.ascontiguousarray(arrays[name], dtype=dtype)
        if len(value) != count:
            raise ValueError(
                f"chunk {chunk_id}: field {name} has {len(value)} rows, expected {count}"
            )
        path = os.path.join(tmp, f"{name}.npy")
        np.save(path, value)
        files[name] = {
            "shape": list(value.shape),
            "dtype": value.dtype.str,
            "sha256": _sha256(path),
        }
    write_json(
        os.path.join(tmp, "chunk.json"),
        {
            "chunk_id": chunk_id,
            "count": count,
            "config_hash": header["config_hash"],
            "files": files,
        },
        indent=1,
        sort_keys=True,
    )
    try:
        os.rename(tmp, final)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)  # another writer finished it first
    return final


def remove_stale_temporaries(root: str, chunk_ids: Sequence[int]) -> int:
    """Delete temporaries a killed writer left for `chunk_ids` (only this shard's own chunks)."""
    folder = os.path.join(root, "chunks")
    prefixes = tuple(f".{chunk_name(c)}.tmp-" for c in chunk_ids)
    removed = 0
    for name in os.listdir(folder) if os.path.isdir(folder) else []:
        if name.startswith(prefixes):
            shutil.rmtree(os.path.join(folder, name), ignore_errors=True)
            removed += 1
    return removed


def finished_chunks(root: str) -> set[int]:
    folder = os.path.join(root, "chunks")
    if not os.path.isdir(folder):
        return set()
    return {
        int(name[len("chunk_") :])
        for name in os.listdir(folder)
        if name.startswith("chunk_") and os.path.exists(os.path.join(folder, name, "chunk.json"))
    }


def combine(out: str, parts: Sequence[str]) -> str:
    """Write OUT/dataset.json listing `parts` (relative paths); checks they belong together."""
    rel = [os.path.relpath(os.path.abspath(p), os.path.abspath(out)) for p in parts]
    CsiDataset(out, parts=rel)  # same config, no chunk twice, complete: checked before writing
    os.makedirs(out, exist_ok=True)
    write_json(os.path.join(out, "dataset.json"), {"parts": rel}, indent=1, sort_keys=True)
    return out


class CsiDataset:
    """A CSI data set opened from one root or a combined root; CSI stays memory-mapped on disk.

    Small per-receiver fields (xy, los, sector, num_paths, rx_index) are loaded; `csi(indices)`
    gathers rows from the memory-mapped chunks. Rows are ordered by receiver index.
    """

    def __init__(
        self, root: str, require_complete: bool = True, parts: Sequence[str] | None = None
    ) -> None:
        """`parts` (paths relative to `root`) overrides what ROOT/dataset.json lists."""
        self.root = root
        header = {"parts": list(parts)} if parts is not None else read_header(root)
        if "parts" in header:
            roots = [os.path.normpath(os.path.join(root, p)) for p in header["parts"]]
        else:
            roots = [root]
        headers = [header if r == root else read_header(r) for r in roots]
        first = headers[0]
        for r, h in zip(roots, headers, strict=True):
            if h.get("config_hash") != first.get("config_hash"):
                raise DataFormatError(
                    f"{r}: part of another data set (config hash {h.get('config_hash')}, "
                    f"expected {first.get('config_hash')} as in {roots[0]})"
                )
        self.header = first
        self.config = StoreConfig(first["config"], os.path.join(roots[0], "dataset.json"))
        owner: dict[int, str] = {}
        for r in roots:
            for chunk_id in sorted(finished_chunks(r)):
                if chunk_id in owner:
                    raise DataFormatError(
                        f"chunk {chunk_id} appears twice: in {owner[chunk_id]} and in {r}; "
                        "expected each chunk in one part"
                    )
                owner[chunk_id] = r
        expected = set(range(first["num_chunks"]))
        foreign = sorted(set(owner) - expected)
        if foreign:
            raise DataFormatError(
                f"{owner[foreign[0]]}: chunk {foreign[0]} lies outside this data set's "
                f"{first['num_chunks']} chunks"
            )
        missing = sorted(expected - set(owner))
        if require_complete and missing:
            raise DataFormatError(
                f"{root}: incomplete data set, {len(missing)} of {first['num_chunks']} chunks missing "
                f"(first: {missing[:5]}); finish generation or open with require_complete=False"
            )
        self._chunks = [(c, os.path.join(owner[c], "chunks", chunk_name(c))) for c in sorted(owner)]
        self._meta = [self._check_chunk(c, d) for c, d in self._chunks]
        small = {
            name: np.concatenate([np.load(os.path.join(d, f"{name}.npy")) for _, d in self._chunks])
            for name in FIELDS
            if name != "csi"
        }
        self.xy, self.los, self.sector = small["xy"], small["los"], small["sector"]
        self.num_paths, self.rx_index = small["num_paths"], small["rx_index"]
        if len(np.unique(self.rx_index)) != len(self.rx_index):
            raise DataFormatError(f"{root}: duplicated receiver indices across chunks")
        self._mmaps: list[np.ndarray | None] = [None] * len(self._chunks)
        self._offsets = np.cumsum([0] + [m["count"] for m in self._meta])

    def _check_chunk(self, chunk_id: int, folder: str) -> dict:
        path = os.path.join(folder, "chunk.json")
        try:
            with open(path) as f:
                meta = json.load(f)
        except (OSError, json.JSONDecodeError) as err:
            raise DataFormatError(f"{path}: unreadable chunk description ({err})") from None
        if meta.get("config_hash") != self.header["config_hash"]:
            raise DataFormatError(
                f"{folder}: foreign chunk (config hash {meta.get('config_hash')}, "
                f"data set {self.header['config_hash']})"
            )
        if meta.get("chunk_id") != chunk_id or set(meta.get("files", {})) != set(FIELDS):
            raise DataFormatError(f"{path}: expected chunk {chunk_id} with files {sorted(FIELDS)}")
        expected_csi = [meta["count"], *self.header["csi_shape"]]
        if meta["files"]["csi"]["shape"] != expected_csi:
            raise DataFormatError(
                f"{folder}/csi.npy: expected shape {expected_csi}, chunk.json says {meta['files']['csi']['shape']}"
            )
        for name, info in meta["files"].items():
            file = os.path.join(folder, f"{name}.npy")
            try:
                array = np.load(file, mmap_mode="r")
            except (OSError, ValueError) as err:
                raise DataFormatError(f"{file}: unreadable ({err})") from None
            if list(array.shape) != info["shape"] or array.dtype.str != info["dtype"]:
                raise DataFormatError(
                    f"{file}: expected {info['dtype']} {info['shape']}, found {array.dtype.str} {list(array.shape)}"
                )
        return meta

    def __len__(self) -> int:
        return int(self._offsets[-1])

    @property
    def csi_shape(self) -> tuple[int, ...]:
        return tuple(self.header["csi_shape"])

    def _mmap(self, i: int) -> np.ndarray:
        if self._mmaps[i] is None:
            self._mmaps[i] = np.load(os.path.join(self._chunks[i][1], "csi.npy"), mmap_mode="r")
        return self._mmaps[i]

    def csi(self, indices: np.ndarray | Sequence[int]) -> np.ndarray:
        """complex64 (len(indices), *csi_shape), read from the memory-mapped chunks."""
        indices = np.asarray(indices, np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f"receiver rows must lie in [0, {len(self)})")
        out = np.empty((len(indices), *self.csi_shape), np.complex64)
        chunk = np.searchsorted(self._offsets, indices, side="right") - 1
        for c in np.unique(chunk):
            sel = chunk == c
            out[sel] = self._mmap(int(c))[indices[sel] - self._offsets[c]]
        return out

    def verify(self) -> None:
        """Recompute every file's sha256; raise naming the first corrupt file."""
        for (_, folder), meta in zip(self._chunks, self._meta, strict=True):
            for name, info in meta["files"].items():
                file = os.path.join(folder, f"{name}.npy")
                if _sha256(file) != info["sha256"]:
                    raise DataFormatError(f"{file}: corrupt (sha256 differs from chunk.json)")

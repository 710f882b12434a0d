"""Torres-Sospedra et al.'s benchmark collection (.mat with struct `database`).

Fields: trainingMacs/testMacs (samples x APs, dBm, 100 = not detected) and trainingLabels/testLabels
(x, y, height, floor, building). Zenodo doi 10.5281/zenodo.3751042.
"""

from __future__ import annotations

import os

import numpy as np
import scipy.io

from jaxfp.data.csv_io import require_finite, require_integral
from jaxfp.data.types import DataFormatError, FingerprintSet, from_raw, require_real

NOT_DETECTED = 100.0
_PARTS = {"train": ("trainingMacs", "trainingLabels"), "test": ("testMacs", "testLabels")}


def load_mat(path: str | os.PathLike) -> dict[str, FingerprintSet]:
    """{'train': ..., 'test': ...} from one file of the collection."""
    path = os.fspath(path)
    try:
        contents = scipy.io.loadmat(path)
    except FileNotFoundError:
        raise
    except Exception as err:  # scipy raises several types for a damaged file
        raise DataFormatError(
            f"{path}: expected a MATLAB v5 .mat file, could not read it ({err})"
        ) from None
    if "database" not in contents:
        keys = sorted(k for k in contents if not k.startswith("__"))
        raise DataFormatError(f"{path}: expected a struct 'database', found variables {keys}")
    struct = contents["database"]
    names = struct.dtype.names or ()
    missing = [f for pair in _PARTS.values() for f in pair if f not in names]
    if missing:
        raise DataFormatError(f"{path}, field 'database': expected fields {missing}, found {names}")
    record = struct[0, 0]
    arrays = {
        f: require_real(record[f], f"{path}:database", f, 2)
        for pair in _PARTS.values()
        for f in pair
    }
    widths = {mac: arrays[mac].shape[1] for mac, _ in _PARTS.values()}
    if len(set(widths.values())) != 1:
        (train_field, train_width), (test_field, test_width) = widths.items()
        raise DataFormatError(
            f"{path}: every part must have the same AP columns; expected {test_field!r} to have "
            f"the {train_width} columns of {train_field!r}, found {test_width}"
        )
    sets = {}
    for part, (mac_field, label_field) in _PARTS.items():
        macs, labels = arrays[mac_field], arrays[label_field]
        source = f"{path}:{mac_field}"
        if macs.ndim != 2 or labels.ndim != 2 or labels.shape[1] != 5:
            raise DataFormatError(
                f"{path}, field {label_field!r}: expected a (samples, 5) matrix of x, y, height, "
                f"floor, building, found {labels.shape}"
            )
        if macs.shape[0] != labels.shape[0]:
            raise DataFormatError(
                f"{path}: expected as many rows in {mac_field!r} as in {label_field!r}, "
                f"found {macs.shape[0]} and {labels.shape[0]}"
            )
        labels = labels.astype(np.float64)
        label_src = f"{path}:{label_field}"
        ap_ids = [f"WAP{i + 1:03d}" for i in range(macs.shape[1])]
        sets[part] = from_raw(
            macs,
            NOT_DETECTED,
            ap_ids,
            xy=require_finite(labels[:, :2], label_src, "x, y", 1),
            source=source,
            height=require_finite(labels[:, 2], label_src, "height", 1),
            floor=require_integral(labels[:, 3], label_src, "floor", 1),
            building=require_integral(labels[:, 4], label_src, "building", 1),
        )
    return sets

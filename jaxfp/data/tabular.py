"""CSV sets with one row per fingerprint: AP columns first, label columns after.

- UJIIndoorLoc (UCI): trainingData.csv / validationData.csv, WAP001..WAP520 then LONGITUDE, LATITUDE
  (EPSG:3857 metres), FLOOR, BUILDINGID, SPACEID, RELATIVEPOSITION, USERID, PHONEID, TIMESTAMP (unix s).
- SODIndoorLoc (github.com/renwudao24/SODIndoorLoc): MAC columns then ECoord, NCoord, FloorID,
  BuildingID, SceneID, UserID, PhoneID, SampleTimes; Training_*.csv / Testing_*.csv per building.
Both mark a not-detected AP with 100.
"""

from __future__ import annotations

import os
import pathlib

import numpy as np

from jaxfp.data.csv_io import (
    check_unique_names,
    read_numeric_csv,
    require_finite,
    require_integral,
)
from jaxfp.data.files import FileTree
from jaxfp.data.types import DataFormatError, FingerprintSet, from_raw

NOT_DETECTED = 100.0

UJI_LABELS = (
    "LONGITUDE",
    "LATITUDE",
    "FLOOR",
    "BUILDINGID",
    "SPACEID",
    "RELATIVEPOSITION",
    "USERID",
    "PHONEID",
    "TIMESTAMP",
)
SOD_LABELS = (
    "ECoord",
    "NCoord",
    "FloorID",
    "BuildingID",
    "SceneID",
    "UserID",
    "PhoneID",
    "SampleTimes",
)


def _split_columns(
    text: str, source: str, label_names: tuple[str, ...]
) -> tuple[list[str], np.ndarray, dict[str, np.ndarray]]:
    names, table = read_numeric_csv(text, source, header=True)
    assert names is not None
    check_unique_names(names, source)
    n_labels = len(label_names)
    if len(names) <= n_labels or tuple(names[-n_labels:]) != label_names:
        raise DataFormatError(
            f"{source}, header: expected AP columns followed by {list(label_names)}, "
            f"found last columns {names[-n_labels:]}"
        )
    ap_names = names[:-n_labels]
    labels = {name: table[:, len(ap_names) + i] for i, name in enumerate(label_names)}
    return ap_names, table[:, : len(ap_names)], labels


def parse_ujiindoorloc(text: str, source: str) -> FingerprintSet:
    """One UJIIndoorLoc CSV file's text."""
    ap_names, raw, lab = _split_columns(text, source, UJI_LABELS)
    ints = {k: require_integral(lab[k], source, k, 2) for k in UJI_LABELS[2:]}
    return from_raw(
        raw,
        NOT_DETECTED,
        ap_names,
        xy=np.column_stack(
            [require_finite(lab[k], source, k, 2) for k in ("LONGITUDE", "LATITUDE")]
        ),
        source=source,
        first_row=2,
        floor=ints["FLOOR"],
        building=ints["BUILDINGID"],
        timestamp=ints["TIMESTAMP"].astype(np.float64),
        device=np.char.add("phone", ints["PHONEID"].astype(str)),
        domain={
            "space": ints["SPACEID"],
            "relative_position": ints["RELATIVEPOSITION"],
            "user": ints["USERID"],
            "phone": ints["PHONEID"],
        },
    )


def parse_sodindoorloc(text: str, source: str) -> FingerprintSet:
    """One SODIndoorLoc CSV file's text."""
    ap_names, raw, lab = _split_columns(text, source, SOD_LABELS)
    ints = {k: require_integral(lab[k], source, k, 2) for k in SOD_LABELS[2:]}
    return from_raw(
        raw,
        NOT_DETECTED,
        ap_names,
        xy=np.column_stack([require_finite(lab[k], source, k, 2) for k in ("ECoord", "NCoord")]),
        source=source,
        first_row=2,
        floor=ints["FloorID"],
        building=ints["BuildingID"],
        device=np.char.add("phone", ints["PhoneID"].astype(str)),
        domain={
            "scene": ints["SceneID"],
            "user": ints["UserID"],
            "phone": ints["PhoneID"],
            "sample_times": ints["SampleTimes"],
        },
    )


def load_ujiindoorloc(path: str | os.PathLike) -> dict[str, FingerprintSet]:
    """A CSV file ({stem: set}), or a folder/zip holding trainingData.csv and validationData.csv
    ({'train': ..., 'test': ...})."""
    tree = FileTree(path)
    if pathlib.Path(path).suffix.lower() == ".csv":
        name = tree.names()[0]
        return {pathlib.Path(name).stem: parse_ujiindoorloc(tree.read_text(name), str(path))}
    wanted = {"train": "trainingData.csv", "test": "validationData.csv"}
    found = {}
    for part, filename in wanted.items():
        matches = [n for n in tree.names() if pathlib.PurePosixPath(n).name == filename]
        if len(matches) != 1:
            raise DataFormatError(
                f"{path}: expected exactly one {filename} (UJIIndoorLoc layout), found {matches}"
            )
        found[part] = parse_ujiindoorloc(tree.read_text(matches[0]), tree.describe(matches[0]))
    return found


def load_sodindoorloc(path: str | os.PathLike) -> dict[str, FingerprintSet]:
    """A CSV file, or a folder/zip of them; keys are file stems (e.g. 'Training_CETC331')."""
    tree = FileTree(path)
    names = [n for n in tree.names() if n.lower().endswith(".csv")]
    if not names:
        raise DataFormatError(f"{path}: expected SODIndoorLoc CSV files, found none")
    return {
        pathlib.PurePosixPath(n).stem: parse_sodindoorloc(tree.read_text(n), tree.describe(n))
        for n in names
    }

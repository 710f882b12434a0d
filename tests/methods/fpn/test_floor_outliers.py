"""The floor-outlier places of a long-term set: found by rule, reported by `jaxfp data info`, and
dropped by FPN's drift protocol when `data.floor_outliers="drop"`."""

import json

import ml_collections
import numpy as np
import pytest

from jaxfp.cli import main
from jaxfp.config import ConfigError
from jaxfp.data.longterm import floor_outlier_places, floor_outlier_scans
from jaxfp.data.types import FingerprintSet
from jaxfp.methods.fpn.data import load_month


def _set(xy, floor):
    n = len(xy)
    rss = np.full((n, 2), -60.0, np.float32)
    return FingerprintSet(
        rss=rss,
        detected=np.ones((n, 2), bool),
        ap_ids=np.array(["a", "b"]),
        xy=np.asarray(xy, np.float64),
        rp_id=np.arange(n),
        floor=np.asarray(floor),
    )


def test_a_floor_held_by_one_place_that_other_floors_share_is_an_outlier():
    # Floors 3 and 5 share a 2-place grid; floor 0 has one place, at a spot floors 3 and 5 share;
    # floor 4 has one place too, but at a spot no other floor uses: not an outlier (a lone
    # landing is a real place).
    xy = [[0, 0], [0, 0], [0, 3], [0, 3], [0, 0], [0, 0], [9, 9]]
    floor = [3, 5, 3, 5, 0, 0, 4]
    fs = _set(xy, floor)
    np.testing.assert_array_equal(floor_outlier_scans(fs), [0, 0, 0, 0, 1, 1, 0])
    assert floor_outlier_places(fs) == [
        {"x": 0.0, "y": 0.0, "floor": 0, "building": 0, "scans": 2, "other_floors_here": [3, 5]}
    ]
    # Stacked survey grids alone (every floor with several places) hold no outlier.
    assert not floor_outlier_scans(_set(xy[:4], floor[:4])).any()


def _write_longterm(root, crd):
    folder = root / "db" / "01"
    folder.mkdir(parents=True)
    n = len(crd)
    (folder / "trn01rss.csv").write_text("\n".join("-60,100" for _ in range(n)) + "\n")
    (folder / "trn01crd.csv").write_text("\n".join(",".join(map(str, c)) for c in crd) + "\n")
    (folder / "trn01tms.csv").write_text("\n".join("20160101120000000" for _ in range(n)) + "\n")
    (folder / "trn01ids.csv").write_text("\n".join(str(i + 1) for i in range(n)) + "\n")


def test_data_info_reports_the_floor_outliers(tmp_path, capsys):
    crd = [(0, 0, 3), (0, 0, 5), (0, 3, 3), (0, 3, 5), (0, 0, 0)]
    _write_longterm(tmp_path, crd)
    assert main(["data", "info", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "01/trn01: 1 scans at (0.00, 0.00) floor 0" in text
    assert "floors [3, 5]" in text
    assert main(["data", "info", str(tmp_path), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["floor_outliers"]["01/trn01"][0]["floor"] == 0


def test_the_drift_protocol_drops_or_keeps_them_as_configured(tmp_path):
    _write_longterm(tmp_path, [(0, 0, 3), (0, 0, 5), (0, 3, 3), (0, 3, 5), (0, 0, 0)])
    d = ml_collections.ConfigDict(
        dict(path=str(tmp_path), format="auto", parts="{month:02d}/{kind}*", floor_outliers="drop")
    )
    assert sorted(load_month(d, 1, "trn").floor.tolist()) == [3, 3, 5, 5]
    d.floor_outliers = "keep"
    assert sorted(load_month(d, 1, "trn").floor.tolist()) == [0, 3, 3, 5, 5]
    d.floor_outliers = "relabel"
    with pytest.raises(ConfigError, match="floor_outliers"):
        load_month(d, 1, "trn")

"""Your own RSS CSV: AP columns and x, y[, z, floor, building, device, user, timestamp] in any order."""

import numpy as np
import pytest

from jaxfp import data

EXAMPLE = """AP_a,x,AP_b,y,floor,device,user,timestamp,AP_c
-57,3.2,100,7.9,0,pixel 7,1,1700000000,-80.5
100,4.0,-75,8.5,1,galaxy s9,2,1700000060.5,100
"""


def test_example_reads_to_hand_values(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text(EXAMPLE)
    assert data.detect_format(path) == "csv"
    fs = data.load(path)["train"]
    assert fs.ap_ids.tolist() == ["AP_a", "AP_b", "AP_c"]
    np.testing.assert_array_equal(fs.rss, [[-57, np.nan, -80.5], [np.nan, -75, np.nan]])
    np.testing.assert_array_equal(fs.xy, [[3.2, 7.9], [4.0, 8.5]])
    np.testing.assert_array_equal(fs.floor, [0, 1])
    np.testing.assert_array_equal(fs.timestamp, [1700000000.0, 1700000060.5])
    assert fs.device.tolist() == ["pixel 7", "galaxy s9"] and fs.domain["user"].tolist() == [1, 2]
    assert fs.height is None and fs.building is None


def test_folder_of_parts_semicolons_and_another_marker(tmp_path):
    (tmp_path / "train.csv").write_text("X;Y;ap1;ap2\n0;0;-50;-110\n1;0;-110;-60\n")
    (tmp_path / "test.csv").write_text("X;Y;ap1;ap2\n0.5;0;-55;-110\n")
    parts = data.load(tmp_path, format="csv", not_detected=-110)
    assert sorted(parts) == ["test", "train"]
    np.testing.assert_array_equal(parts["train"].detected, [[True, False], [False, True]])
    np.testing.assert_array_equal(parts["test"].xy, [[0.5, 0.0]])


CASES = {
    "missing column y": (
        lambda t: t.replace(",y,", ",north,"),
        r"mine.csv, header: expected a column 'y' \(the y coordinate, metres\)",
    ),
    "missing column x": (
        lambda t: t.replace(",x,", ",east,"),
        r"mine.csv, header: expected a column 'x'",
    ),
    "non-numeric RSS": (
        lambda t: t.replace("-75,", "strong,"),
        r"mine.csv, row 3, field 'AP_b': expected a number, found 'strong'",
    ),
    "RSS above 0 dBm": (
        lambda t: t.replace("-75,", "5,"),
        r"mine.csv, row 3, field 'AP_b': expected RSS in \[-130, 0\] dBm or the not-detected "
        r"marker 100",
    ),
    "fractional floor": (
        lambda t: t.replace(",1,galaxy", ",1.5,galaxy"),
        r"mine.csv, row 3, field 'floor': expected a whole number, found 1.5",
    ),
    "NaN coordinate": (
        lambda t: t.replace(",4.0,", ",nan,"),
        r"mine.csv, row 3, field 'x': expected a finite number",
    ),
    "short row": (
        lambda t: t.replace(",100\n", "\n"),
        r"mine.csv, row 3: expected 9 ','-separated values",
    ),
    "no AP columns": (
        lambda t: "x,y\n1,2\n",
        r"mine.csv, header: expected AP columns beside the labels",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_errors_name_file_row_and_column(case, tmp_path):
    edit, pattern = CASES[case]
    path = tmp_path / "mine.csv"
    path.write_text(edit(EXAMPLE))
    with pytest.raises(data.DataFormatError, match=pattern):
        data.load(path, format="csv")


def test_round_trip_through_comford(tmp_path):
    path = tmp_path / "site.csv"
    path.write_text(EXAMPLE)
    original = data.load(path)
    data.write_comford(original, tmp_path / "site_comford")
    back = data.load(tmp_path / "site_comford")["site"]
    np.testing.assert_array_equal(back.rss, original["site"].rss)
    assert back.device.tolist() == original["site"].device.tolist()
    np.testing.assert_array_equal(back.timestamp, original["site"].timestamp)

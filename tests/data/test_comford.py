"""COMFORD: the reference package's layout read back, jaxfp -> COMFORD -> jaxfp keeps every field, and
every reader error names the file, the row and the field."""

import os
import shutil

import numpy as np
import pytest

from jaxfp import data
from jaxfp.data import comford_write
from jaxfp.data.types import FingerprintSet

from ..conftest import FIXTURES

COMFORD_MINI = FIXTURES / "comford_mini.zip"
FIELDS = ("rss", "detected", "ap_ids", "xy", "rp_id", "height", "floor", "building", "timestamp")


def assert_same(a: FingerprintSet, b: FingerprintSet, fields=(*FIELDS, "device", "domain")) -> None:
    for name in fields:
        if name == "domain":
            assert sorted(a.domain) == sorted(b.domain)
            for key in a.domain:
                np.testing.assert_array_equal(a.domain[key], b.domain[key], err_msg=key)
                assert a.domain[key].dtype == b.domain[key].dtype
            continue
        u, v = getattr(a, name), getattr(b, name)
        assert (u is None) == (v is None), name
        if u is not None:
            np.testing.assert_array_equal(u, v, err_msg=name)  # NaN equals NaN here
            assert u.dtype.kind == v.dtype.kind, name
            if u.dtype.kind != "U":
                assert u.dtype == v.dtype, name


# --- the reference package's layout -----------------------------------------------------------


def test_reference_layout_reads_as_the_uji_rows_it_was_cut_from(uji_folder):
    """comford_mini.zip holds UJIIndoorLoc's first 12 training and 6 validation rows as the package
    writes them (Samples.csv, APs.csv, split values training / validation, None for z)."""
    assert data.detect_format(COMFORD_MINI) == "comford"
    parts = data.load(COMFORD_MINI)
    assert list(parts) == ["train", "validation"]
    train, validation = parts["train"], parts["validation"]
    assert (train.n, validation.n, train.n_aps) == (12, 6, 117)
    # Row 1 of trainingData.csv: -7339.1538871750, 4864749.3846904561, floor 3, building 2,
    # user 17, phone 16, 1370483320; WAP061 heard at -81 dBm.
    np.testing.assert_array_equal(train.xy[0], [-7339.1538871750, 4864749.3846904561])
    assert (train.floor[0], train.building[0], train.device[0]) == (3, 2, "16")
    assert train.domain["user"][0] == 17 and train.timestamp[0] == 1370483320.0
    assert train.rss[0, train.ap_ids.tolist().index("WAP061")] == -81.0
    assert train.height is None
    uji = data.load(uji_folder)
    for part, uji_part, rows in (("train", "train", 12), ("validation", "test", 6)):
        expected = uji[uji_part].subset(np.arange(rows)).select_aps(parts[part].ap_ids.tolist())
        got = parts[part]
        np.testing.assert_array_equal(got.detected, expected.detected)
        np.testing.assert_array_equal(got.rss, expected.rss)
        np.testing.assert_array_equal(got.xy, expected.xy)
        np.testing.assert_array_equal(got.floor, expected.floor)
        np.testing.assert_array_equal(got.domain["user"], expected.domain["user"])
        # Every AP heard somewhere in the 18 rows, and no other, is in APs.csv.
        assert expected.detected.any(axis=0).sum() <= got.n_aps == 117


def test_reference_ml_ready_layout_agrees_with_its_intermediate():
    full = data.load(COMFORD_MINI)
    ml = data.load(COMFORD_MINI, layout="ml")
    assert list(ml) == ["train", "validation"]
    for part in full:
        # ML-ready AP columns are sorted by name; -120 is read as not heard.
        assert ml[part].ap_ids.tolist() == sorted(full[part].ap_ids.tolist())
        aligned = ml[part].select_aps(full[part].ap_ids.tolist())
        assert_same(full[part], aligned, ("rss", "detected", "xy", "floor", "building"))
        np.testing.assert_array_equal(ml[part].timestamp, full[part].timestamp)
        assert ml[part].device is None and ml[part].domain == {}


# --- jaxfp -> COMFORD -> jaxfp -----------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["uji_folder", "longterm_zip", "dsi1_path"])
def test_round_trip_keeps_every_field(fixture, request, tmp_path):
    original = data.load(request.getfixturevalue(fixture))
    out = tmp_path / "out"
    data.write_comford(original, out)
    back = data.load(out)
    assert data.detect_format(out) == "comford"
    assert list(back) == list(original)
    for part in original:
        assert_same(original[part], back[part])


def test_round_trip_through_a_zip_and_the_ml_ready_files(uji_folder, tmp_path):
    original = data.load(uji_folder)
    data.write_comford(original, tmp_path / "uji.zip")
    back = data.load(tmp_path / "uji.zip")
    ml = data.load(tmp_path / "uji.zip", layout="ml")
    for part in original:
        assert_same(original[part], back[part])
        # The ML-ready files hold no device or user columns; the rest comes back.
        assert_same(original[part], ml[part], FIELDS)


def test_the_raw_files_beside_a_comford_set_do_not_hide_it(uji_folder, tmp_path):
    """The comford package keeps a set's raw files next to its own (here UJIIndoorLoc's CSVs)."""
    out = tmp_path / "uji"
    data.write_comford(data.load(uji_folder), out, layouts=("intermediate",))
    shutil.copytree(uji_folder, out / "UJIndoorLoc")
    assert data.detect_format(out) == "comford"
    assert sorted(os.listdir(out)) == ["UJIndoorLoc", "intermediate"]


def test_written_files_follow_the_reference_column_order(tmp_path):
    fs = FingerprintSet(
        rss=np.array([[-60.0, np.nan], [np.nan, -70.5]], np.float32),
        detected=np.array([[True, False], [False, True]]),
        ap_ids=np.array(["a", "b"]),
        xy=np.array([[1.0, 2.0], [3.0, 4.25]]),
        rp_id=np.array([0, 1]),
        floor=np.array([0, 2]),
        device=np.array(["pixel", "pixel"]),
        domain={"user": np.array([7, 8]), "month": np.array([1, 1])},
    )
    data.write_comford({"train": fs.subset([0]), "01/x": fs.subset([1])}, tmp_path / "c")
    folder = tmp_path / "c" / "intermediate"
    samples = (folder / "Sample.csv").read_text().splitlines()
    assert samples == [
        "sample_id;x;y;z;timestamp;set;floor;building;device;user;config;orientation;rp_id;"
        "domain.month",
        "0;1;2;None;None;training;0;None;pixel;7;None;None;0;1",
        "1;3;4.25;None;None;01/x;2;None;pixel;8;None;None;1;1",
    ]
    rssi = (folder / "RSSI.csv").read_text().splitlines()
    assert rssi == ["sample_id;rssi;ap_id;channel/freq", "0;-60;a;None", "1;-70.5;b;None"]
    assert (folder / "AP.csv").read_text().splitlines()[1:] == [
        "a;WiFi;None;None;None",
        "b;WiFi;None;None;None",
    ]
    ml = tmp_path / "c" / "ML_final"
    assert sorted(os.listdir(ml)) == [
        "01-x_coordinates.csv",
        "01-x_features.csv",
        "training_coordinates.csv",
        "training_features.csv",
    ]
    assert (ml / "01-x_features.csv").read_text().splitlines() == [
        "sample_id;a_rssi;b_rssi",
        "1;-120;-70.5",
    ]
    assert (ml / "training_coordinates.csv").read_text().splitlines() == [
        "sample_id;x;y;z;floor;building",
        "0;1;2;None;0;None",
    ]
    back = data.load(tmp_path / "c")
    assert list(back) == ["train", "01/x"]
    assert {k: v.tolist() for k, v in back["01/x"].domain.items()} == {"user": [8], "month": [1]}


def test_a_reading_equal_to_the_fill_value_is_refused_and_nothing_is_written(tmp_path):
    fs = FingerprintSet(
        rss=np.array([[-50.0], [-120.0]], np.float32),
        detected=np.array([[True], [True]]),
        ap_ids=np.array(["a"]),
        xy=np.zeros((2, 2)),
        rp_id=np.array([0, 0]),
        source="mine.csv",
    )
    with pytest.raises(
        data.DataFormatError, match=r"mine.csv: sample 2 of part 'train' hears AP 'a' at -120 dBm"
    ):
        data.write_comford({"train": fs}, tmp_path / "c")
    assert os.listdir(tmp_path) == []
    data.write_comford({"train": fs}, tmp_path / "c", not_detected=100)
    back = data.load(tmp_path / "c", layout="ml", not_detected=100)["train"]
    np.testing.assert_array_equal(back.rss[:, 0], [-50.0, -120.0])


def test_a_write_that_fails_half_way_leaves_nothing(uji_folder, tmp_path, monkeypatch):
    sets = data.load(uji_folder)
    calls = []

    def failing_open(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == 3:
            raise OSError("disk full")
        return open(*args, **kwargs)

    monkeypatch.setattr(comford_write, "open", failing_open, raising=False)
    with pytest.raises(OSError, match="disk full"):
        data.write_comford(sets, tmp_path / "out")
    assert len(calls) == 3 and os.listdir(tmp_path) == []  # no output, no temporary
    monkeypatch.undo()
    data.write_comford(sets, tmp_path / "out")
    with pytest.raises(FileExistsError, match="out: exists"):
        data.write_comford(sets, tmp_path / "out")


# --- reader errors on small broken files -------------------------------------------------------

SAMPLE = """sample_id;x;y;z;timestamp;set;floor;building;device;user
s1;1.5;2;None;100;training;0;1;pixel;3
s2;3;4;None;200;training;1;1;pixel;3
s3;5;6.25;None;300;testing;0;1;galaxy;4
"""
RSSI = """sample_id;ap_id;rssi
s1;a;-60
s1;b;-70.5
s2;b;-80
s3;a;-90
"""
AP = "ap_id;technology\na;WiFi\nb;WiFi\nc;WiFi\n"


def write_set(folder, sample=SAMPLE, rssi=RSSI, ap=AP):
    folder.mkdir(exist_ok=True)
    for name, text in (("Sample.csv", sample), ("RSSI.csv", rssi), ("AP.csv", ap)):
        if text is not None:
            (folder / name).write_text(text)
    return folder


def test_small_set_reads_to_hand_values(tmp_path):
    parts = data.load(write_set(tmp_path / "c"))
    train, test = parts["train"], parts["test"]
    nan = np.nan
    np.testing.assert_array_equal(train.rss, [[-60, -70.5, nan], [nan, -80, nan]])
    np.testing.assert_array_equal(test.rss, [[-90, nan, nan]])
    assert train.ap_ids.tolist() == ["a", "b", "c"]  # AP.csv's order, 'c' never heard
    np.testing.assert_array_equal(train.xy, [[1.5, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(train.floor, [0, 1])
    np.testing.assert_array_equal(train.timestamp, [100.0, 200.0])
    np.testing.assert_array_equal(train.rp_id, [0, 1])
    assert train.device.tolist() == ["pixel", "pixel"] and test.domain["user"].tolist() == [4]
    assert train.height is None
    # Without AP.csv the APs come in order of first appearance in RSSI.csv and 'c' is unknown.
    (tmp_path / "c" / "AP.csv").unlink()
    rssi = "sample_id;ap_id;rssi\ns2;b;-80\ns1;a;-60\n"
    (tmp_path / "c" / "RSSI.csv").write_text(rssi)
    assert data.load(tmp_path / "c")["train"].ap_ids.tolist() == ["b", "a"]
    # Without a split column every row is one part, 'all'; ',' separates as well as ';'.
    (tmp_path / "c" / "Sample.csv").write_text("sample_id,x,y\ns1,0,0\ns2,1,0\ns3,2,0\n")
    (tmp_path / "c" / "RSSI.csv").write_text("sample_id,ap_id,rssi\ns3,a,-40\n")
    assert list(data.load(tmp_path / "c")) == ["all"]


def _replace(text, old, new):
    assert old in text
    return text.replace(old, new, 1)


INTERMEDIATE_CASES = {
    "missing column x": (
        "Sample.csv",
        lambda t: _replace(t, "sample_id;x;y", "sample_id;east;y"),
        r"Sample.csv, header: expected a column 'x'",
    ),
    "non-numeric rssi": (
        "RSSI.csv",
        lambda t: _replace(t, "s1;b;-70.5", "s1;b;loud"),
        r"RSSI.csv, row 3, field 'rssi': expected a number, found 'loud'",
    ),
    "NaN rssi": (
        "RSSI.csv",
        lambda t: _replace(t, "s1;b;-70.5", "s1;b;nan"),
        r"RSSI.csv, row 3, field 'rssi': expected a number, found 'nan'",
    ),
    "rssi outside dBm range": (
        "RSSI.csv",
        lambda t: _replace(t, "s2;b;-80", "s2;b;100"),
        r"RSSI.csv, row 4, field 'rssi': expected an observed RSS .*\[-130, 0\] dBm, found '100'",
    ),
    "missing rssi column": (
        "RSSI.csv",
        lambda t: _replace(t, "sample_id;ap_id;rssi", "sample_id;ap_id;level"),
        r"RSSI.csv, header: expected a column 'rssi'",
    ),
    "sample unknown to Sample.csv": (
        "RSSI.csv",
        lambda t: _replace(t, "s2;b;-80", "s9;b;-80"),
        r"RSSI.csv, row 4, field 'sample_id': expected a sample_id listed in .*Sample.csv, "
        r"found 's9'",
    ),
    "duplicate (sample_id, ap_id)": (
        "RSSI.csv",
        lambda t: t + "s1;a;-61\n",
        r"RSSI.csv, rows 2 and 6: expected one reading per \(sample_id, ap_id\), found two for "
        r"\('s1', 'a'\)",
    ),
    "AP unknown to AP.csv": (
        "RSSI.csv",
        lambda t: _replace(t, "s3;a;-90", "s3;zz;-90"),
        r"RSSI.csv, row 5, field 'ap_id': expected an ap_id listed in .*AP.csv, found 'zz'",
    ),
    "row with a missing cell": (
        "RSSI.csv",
        lambda t: _replace(t, "s1;b;-70.5", "s1;-70.5"),
        r"RSSI.csv, row 3: expected 3 ';'-separated values as in the header, found 2",
    ),
    "duplicate sample_id": (
        "Sample.csv",
        lambda t: _replace(t, "s2;3;4", "s1;3;4"),
        r"Sample.csv, rows 2 and 3, field 'sample_id': expected unique identifiers, found 's1'",
    ),
    "duplicate ap_id": (
        "AP.csv",
        lambda t: _replace(t, "c;WiFi", "a;WiFi"),
        r"AP.csv, rows 2 and 4, field 'ap_id': expected unique identifiers, found 'a'",
    ),
    "non-numeric x": (
        "Sample.csv",
        lambda t: _replace(t, "s2;3;4", "s2;three;4"),
        r"Sample.csv, row 3, field 'x': expected a number, found 'three'",
    ),
    "missing y": (
        "Sample.csv",
        lambda t: _replace(t, "s2;3;4", "s2;3;None"),
        r"Sample.csv, row 3, field 'y': expected a number, found 'None'",
    ),
    "fractional floor": (
        "Sample.csv",
        lambda t: _replace(t, "training;1;1", "training;1.5;1"),
        r"Sample.csv, row 3, field 'floor': expected a whole number .*found '1.5'",
    ),
    "floor on some rows of a part": (
        "Sample.csv",
        lambda t: _replace(t, "training;1;1", "training;None;1"),
        r"Sample.csv, row 3, field 'floor': expected a value on every row of part 'train' or on "
        r"none, found 'None'",
    ),
    "duplicate column": (
        "Sample.csv",
        lambda t: _replace(t, "device;user", "device;x"),
        r"Sample.csv, header: expected each column once, found 'x' in columns 2 and 10",
    ),
    "no rows": (
        "Sample.csv",
        lambda t: t.splitlines()[0] + "\n",
        r"Sample.csv: expected at least one data row, found none",
    ),
}


@pytest.mark.parametrize("case", sorted(INTERMEDIATE_CASES))
def test_intermediate_errors_name_file_row_and_field(case, tmp_path):
    folder = write_set(tmp_path / "c")
    name, edit, pattern = INTERMEDIATE_CASES[case]
    (folder / name).write_text(edit((folder / name).read_text()))
    with pytest.raises(data.DataFormatError, match=pattern) as info:
        data.load(folder, format="comford")
    assert info.value.__cause__ is None


def test_missing_and_doubled_files_are_named(tmp_path):
    folder = write_set(tmp_path / "c", rssi=None)
    with pytest.raises(data.DataFormatError, match=r"expected exactly one RSSI.csv .*found \[\]"):
        data.load(folder, format="comford")
    write_set(folder)
    (folder / "Samples.csv").write_text(SAMPLE)
    with pytest.raises(
        data.DataFormatError,
        match=r"expected exactly one Sample.csv or Samples.csv .*\['Sample.csv', 'Samples.csv'\]",
    ):
        data.load(folder)
    with pytest.raises(data.DataFormatError, match=r"layout: expected one of"):
        data.load(folder, format="comford", layout="flat")


FEATURES = "sample_id;a_rssi;b_rssi;timestamp\ns1;-60;-120;100\ns2;-120;-80;200\n"
COORDINATES = "sample_id;x;y;z;floor;building\ns1;1;2;None;0;1\ns2;3;4;None;1;1\n"


def test_ml_ready_reads_to_hand_values(tmp_path):
    (tmp_path / "training_features.csv").write_text(FEATURES)
    (tmp_path / "training_coordinates.csv").write_text(COORDINATES)
    fs = data.load(tmp_path)["train"]
    np.testing.assert_array_equal(fs.rss, [[-60, np.nan], [np.nan, -80]])
    assert fs.ap_ids.tolist() == ["a", "b"] and fs.height is None
    np.testing.assert_array_equal(fs.timestamp, [100.0, 200.0])
    np.testing.assert_array_equal(fs.building, [1, 1])


ML_CASES = {
    "non-numeric cell": (
        "training_features.csv",
        lambda t: _replace(t, "s1;-60", "s1;loud"),
        r"training_features.csv, row 2, field 'a_rssi': expected an RSS in dBm or the fill value "
        r"-120, found 'loud'",
    ),
    "another fill value": (
        "training_features.csv",
        lambda t: t.replace("-120", "100"),
        r"training_features.csv, row 2, field 'b_rssi': expected an RSS in \[-130, 0\] dBm or the "
        r"fill value -120 \(set not_detected .*found '100'",
    ),
    "sample without coordinates": (
        "training_coordinates.csv",
        lambda t: _replace(t, "s2;3;4;None;1;1\n", ""),
        r"training_coordinates.csv: expected coordinates for every sample of .*"
        r"training_features.csv, none for sample_id 's2'",
    ),
    "coordinates of another sample": (
        "training_coordinates.csv",
        lambda t: t + "s7;0;0;None;0;1\n",
        r"training_coordinates.csv: expected the samples of .*training_features.csv only, found "
        r"others \['s7'\]",
    ),
    "non-numeric coordinate": (
        "training_coordinates.csv",
        lambda t: _replace(t, "s2;3;4", "s2;3;north"),
        r"training_coordinates.csv, row 3, field 'y': expected a number, found 'north'",
    ),
}


@pytest.mark.parametrize("case", sorted(ML_CASES))
def test_ml_ready_errors_name_file_row_and_field(case, tmp_path):
    (tmp_path / "training_features.csv").write_text(FEATURES)
    (tmp_path / "training_coordinates.csv").write_text(COORDINATES)
    name, edit, pattern = ML_CASES[case]
    (tmp_path / name).write_text(edit((tmp_path / name).read_text()))
    with pytest.raises(data.DataFormatError, match=pattern):
        data.load(tmp_path, format="comford")


def test_ml_ready_other_fill_value_and_missing_coordinates_file(tmp_path):
    (tmp_path / "training_features.csv").write_text(FEATURES.replace("-120", "100"))
    with pytest.raises(data.DataFormatError, match=r"expected training_coordinates.csv beside it"):
        data.load(tmp_path)
    (tmp_path / "training_coordinates.csv").write_text(COORDINATES)
    fs = data.load(tmp_path, not_detected=100)["train"]
    np.testing.assert_array_equal(fs.detected, [[True, False], [False, True]])

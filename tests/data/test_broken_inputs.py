"""The broken-input corpus: every case must raise DataFormatError naming the file and the spot."""

import shutil
import zipfile

import numpy as np
import pytest
import scipy.io

from jaxfp import cli, data


def _uji_copy(uji_folder, tmp_path):
    folder = tmp_path / "uji"
    shutil.copytree(uji_folder, folder)
    return folder, folder / "trainingData.csv"


def _edit_line(path, line_no, edit):
    lines = path.read_text().splitlines()
    lines[line_no - 1] = edit(lines[line_no - 1])
    path.write_text("\n".join(lines) + "\n")


def _set_cell(col):
    def edit(line):
        cells = line.split(",")
        cells[0] = col
        return ",".join(cells)

    return edit


UJI_CASES = {
    "truncated file": (
        lambda p: p.write_text(p.read_text()[: len(p.read_text()) // 2]),
        r"row \d+.*expected 529",
    ),
    "extra column": (
        lambda p: _edit_line(p, 5, lambda s: s + ",7"),
        r"row 5.*expected 529.*found 530",
    ),
    "non-numeric cell": (
        lambda p: _edit_line(p, 7, _set_cell("abc")),
        r"row 7, field 'WAP001'.*expected a number.*'abc'",
    ),
    "NaN cell": (
        lambda p: _edit_line(p, 9, _set_cell("nan")),
        r"row 9, field 'WAP001'.*expected RSS",
    ),
    "inf cell": (
        lambda p: _edit_line(p, 9, _set_cell("inf")),
        r"row 9, field 'WAP001'.*expected RSS",
    ),
    "RSS above 0 dBm": (
        lambda p: _edit_line(p, 3, _set_cell("5")),
        r"row 3, field 'WAP001'.*\[-130, 0\].*5\.0",
    ),
    "RSS below -130 dBm": (
        lambda p: _edit_line(p, 4, _set_cell("-140")),
        r"row 4, field 'WAP001'.*-140",
    ),
    "duplicate AP column": (
        lambda p: _edit_line(p, 1, lambda s: s.replace("WAP002", "WAP001", 1)),
        r"duplicate column 'WAP001'.*columns 1 and 2",
    ),
    "empty set": (
        lambda p: p.write_text(p.read_text().splitlines()[0] + "\n"),
        r"expected at least one data row",
    ),
    "empty file": (lambda p: p.write_text(""), r"expected a header line"),
    "wrong label columns": (
        lambda p: _edit_line(p, 1, lambda s: s.replace("BUILDINGID", "BLDG")),
        r"header: expected AP columns followed by",
    ),
    "non-integer floor": (
        lambda p: _edit_line(
            p, 6, lambda s: ",".join(s.split(",")[:522] + ["2.5"] + s.split(",")[523:])
        ),
        r"row 6, field 'FLOOR'.*expected an integer.*2\.5",
    ),
    "non-finite coordinate": (
        lambda p: _edit_line(
            p, 6, lambda s: ",".join(s.split(",")[:520] + ["nan"] + s.split(",")[521:])
        ),
        r"row 6, field 'LONGITUDE'.*finite",
    ),
}


@pytest.mark.parametrize("case", sorted(UJI_CASES))
def test_ujiindoorloc_corpus(case, uji_folder, tmp_path):
    folder, target = _uji_copy(uji_folder, tmp_path)
    breaker, pattern = UJI_CASES[case]
    breaker(target)
    with pytest.raises(data.DataFormatError, match=pattern) as info:
        data.load(folder, format="ujiindoorloc")
    assert "trainingData.csv" in str(info.value)
    assert info.value.__cause__ is None  # no numpy traceback chained under ours


def _longterm_copy(longterm_zip, tmp_path):
    shutil.unpack_archive(longterm_zip, tmp_path)
    return tmp_path, tmp_path / "UJI_LIB_DB_v2" / "db" / "02"


LONGTERM_CASES = {
    "row counts differ": (
        lambda d: _drop_last_line(d / "tst01crd.csv"),
        r"tst01: expected equal row counts.*tst01crd.csv has 95",
    ),
    "missing tms file": (
        lambda d: (d / "trn01tms.csv").unlink(),
        r"db/02/trn01 lacks its tms file",
    ),
    "bad timestamp": (
        lambda d: _edit_line(d / "trn01tms.csv", 4, lambda s: "2016x"),
        r"trn01tms.csv, row 4: expected a timestamp",
    ),
    "impossible date": (
        lambda d: _edit_line(d / "trn01tms.csv", 4, lambda s: "20161345120000000"),
        r"trn01tms.csv, row 4: expected a valid date",
    ),
    "crd with two columns": (
        lambda d: _edit_line(d / "trn01crd.csv", 2, lambda s: ",".join(s.split(",")[:2])),
        r"trn01crd.csv, row 2: expected 3",
    ),
    "RSS out of range": (
        lambda d: _edit_line(d / "trn01rss.csv", 10, _set_cell("12")),
        r"trn01rss.csv, row 10, field 'AP001'",
    ),
    "AP count differs": (
        lambda d: _edit_all(d / "tst01rss.csv", lambda s: s + ",100"),
        r"same AP columns.*02/tst01: 621",
    ),
}


def _drop_last_line(path):
    path.write_text("\n".join(path.read_text().splitlines()[:-1]) + "\n")


def _edit_all(path, edit):
    path.write_text("\n".join(edit(s) for s in path.read_text().splitlines()) + "\n")


@pytest.mark.parametrize("case", sorted(LONGTERM_CASES))
def test_longterm_corpus(case, longterm_zip, tmp_path):
    root, month_dir = _longterm_copy(longterm_zip, tmp_path)
    breaker, pattern = LONGTERM_CASES[case]
    breaker(month_dir)
    with pytest.raises(data.DataFormatError, match=pattern):
        data.load(root, format="longterm")


def test_zip_without_the_layout(tmp_path):
    archive = tmp_path / "other.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("readme.txt", "hello")
    with pytest.raises(data.DataFormatError, match=r"other.zip: expected the long-term layout"):
        data.load(archive, format="longterm")
    with pytest.raises(data.DataFormatError, match=r"other.zip: could not recognise the format"):
        data.load(archive)
    with pytest.raises(data.DataFormatError, match=r"expected exactly one trainingData.csv"):
        data.load(archive, format="ujiindoorloc")


def test_corrupt_zip_member(longterm_zip, tmp_path):
    broken = tmp_path / "broken.zip"
    raw = bytearray(longterm_zip.read_bytes())
    raw[200:260] = b"\0" * 60  # damage the first member's compressed bytes
    broken.write_bytes(bytes(raw))
    with pytest.raises(data.DataFormatError, match=r"broken.zip:UJI_LIB_DB_v2/db/01/"):
        data.load(broken, format="longterm")


def _mat(tmp_path, **fields):
    base = {
        "trainingMacs": np.full((4, 3), 100.0),
        "trainingLabels": np.zeros((4, 5)),
        "testMacs": np.full((2, 3), 100.0),
        "testLabels": np.zeros((2, 5)),
    }
    base["trainingMacs"][:, 0] = -60
    base.update(fields)
    base = {k: v for k, v in base.items() if v is not None}
    path = tmp_path / "case.mat"
    scipy.io.savemat(path, {"database": base})
    return path


def test_mat_corpus(tmp_path, dsi1_path):
    assert data.load(_mat(tmp_path))["train"].n == 4
    with pytest.raises(
        data.DataFormatError, match=r"case.mat, field 'database': expected fields \['testLabels'\]"
    ):
        data.load(_mat(tmp_path, testLabels=None))
    with pytest.raises(
        data.DataFormatError,
        match=r"expected as many rows in 'trainingMacs' as in 'trainingLabels'.*4 and 3",
    ):
        data.load(_mat(tmp_path, trainingLabels=np.zeros((3, 5))))
    bad = np.full((4, 3), 100.0)
    bad[2, 1] = 20
    with pytest.raises(data.DataFormatError, match=r"case.mat:trainingMacs, row 3, field 'WAP002'"):
        data.load(_mat(tmp_path, trainingMacs=bad))
    labels = np.zeros((4, 5))
    labels[1, 3] = 0.5
    with pytest.raises(data.DataFormatError, match=r"trainingLabels, row 2, field 'floor'"):
        data.load(_mat(tmp_path, trainingLabels=labels))
    with pytest.raises(
        data.DataFormatError,
        match=r"case.mat: every part must have the same AP columns; expected 'testMacs' to have "
        r"the 3 columns of 'trainingMacs', found 2",
    ):
        data.load(_mat(tmp_path, testMacs=np.full((2, 2), 100.0)))
    truncated = tmp_path / "truncated.mat"
    truncated.write_bytes(dsi1_path.read_bytes()[:5000])
    with pytest.raises(
        data.DataFormatError, match=r"truncated.mat: expected a MATLAB v5 .mat file"
    ):
        data.load(truncated)


def test_cli_reports_bad_input_without_traceback(uji_folder, tmp_path, capsys):
    folder, target = _uji_copy(uji_folder, tmp_path)
    _edit_line(target, 7, _set_cell("abc"))
    assert cli.main(["data", "info", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jaxfp: error:") and "row 7" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "field, value, found",
    [
        ("trainingMacs", np.full((4, 3), -60.0 + 1j), "complex values"),
        ("testMacs", np.array([["a", "b", "c"], ["d", "e", "f"]]), "text values"),
        ("trainingMacs", np.full((4, 3, 2), -60.0), r"expected a 2-D array, found 3-D"),
        ("trainingLabels", np.zeros((4, 5)) + 0j, "complex values"),
    ],
)
def test_mat_arrays_of_the_wrong_type_or_rank_are_refused(tmp_path, field, value, found):
    with pytest.raises(
        data.DataFormatError, match=rf"case.mat:database, field '{field}': .*{found}"
    ):
        data.load(_mat(tmp_path, **{field: value}))


@pytest.mark.parametrize(
    "raw, found",
    [
        (np.full((2, 3), -60.0 + 0j), "expected real numbers, found complex values"),
        (np.full((2, 3), "x"), "expected real numbers, found text values"),
        (np.full((2, 3), None), "expected real numbers, found object values"),
        (np.full((2, 3), True), "expected real numbers, found boolean values"),
        (np.full((2, 3, 1), -60.0), "expected a 2-D array, found 3-D"),
    ],
)
def test_in_memory_rss_of_the_wrong_type_is_refused(raw, found):
    from jaxfp.data.types import from_raw

    with pytest.raises(data.DataFormatError, match=rf"mine, field 'rss': {found}"):
        from_raw(raw, 100.0, ["a", "b", "c"], np.zeros((2, 2)), "mine")

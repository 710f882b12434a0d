"""`jaxfp data convert SRC DST --to comford`: the converted set reads back equal, and a failed or
refused conversion leaves nothing behind."""

import json
import os

import numpy as np

from jaxfp import cli, data


def test_convert_then_info_reads_the_same_set(uji_folder, tmp_path, capsys):
    out = tmp_path / "uji_comford"
    assert cli.main(["data", "convert", str(uji_folder), str(out), "--to", "comford"]) == 0
    said = capsys.readouterr().out
    assert "(ujiindoorloc: train 300, test 60)" in said and "intermediate + ml" in said
    assert sorted(os.listdir(out)) == ["ML_final", "intermediate"]
    assert cli.main(["data", "info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["format"] == "comford"
    assert info["parts"]["train"]["samples"] == 300 and info["parts"]["test"]["samples"] == 60
    original, back = data.load(uji_folder), data.load(out)
    for part in ("train", "test"):
        np.testing.assert_array_equal(back[part].rss, original[part].rss)
        np.testing.assert_array_equal(back[part].xy, original[part].xy)
        np.testing.assert_array_equal(back[part].domain["phone"], original[part].domain["phone"])


def test_one_layout_into_a_zip(longterm_zip, tmp_path, capsys):
    out = tmp_path / "lt.zip"
    argv = ["data", "convert", str(longterm_zip), str(out), "--to", "comford"]
    assert cli.main([*argv, "--layout", "ml", "--not-detected", "-125"]) == 0
    back = data.load(out, not_detected=-125)
    assert list(back)[:2] == ["01-trn01", "01-tst01"]  # '/' cannot stand in a file name
    np.testing.assert_array_equal(
        back["01-trn01"].detected, data.load(longterm_zip)["01/trn01"].detected
    )


def test_refusals_leave_nothing(uji_folder, tmp_path, capsys):
    out = tmp_path / "taken"
    out.mkdir()
    argv = ["data", "convert", str(uji_folder), str(out), "--to", "comford"]
    assert cli.main(argv) == 2
    assert "taken: exists; expected a new folder" in capsys.readouterr().err
    # A reading equal to the ML-ready fill value fails the write before anything lands.
    mine = tmp_path / "mine.csv"
    mine.write_text("x,y,ap\n0,0,-120\n1,0,-60\n")
    out = tmp_path / "mine_comford"
    assert cli.main(["data", "convert", str(mine), str(out), "--to", "comford"]) == 2
    assert "mine.csv: sample 1 of part 'mine' hears AP 'ap' at -120 dBm" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["mine.csv", "taken"]
    # The intermediate layout alone has no fill value, so the same set converts.
    argv = ["data", "convert", str(mine), str(out), "--to", "comford", "--layout", "intermediate"]
    assert cli.main(argv) == 0
    assert data.load(out)["mine"].rss[0, 0] == -120.0

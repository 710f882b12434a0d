"""The results layer: summaries over seeds, results.json, printed and markdown tables, report."""

import json

import numpy as np
import pytest

from jaxfp.eval import results


def test_over_seeds_mean_and_ci():
    row = results.over_seeds([1.0, 2.0, 3.0], "rss")
    assert row["rss"] == 2.0 and row["rss_ci_low"] <= 2.0 <= row["rss_ci_high"]
    assert results.over_seeds([4.0])["mean_ci_low"] == 4.0  # one seed: no spread


def test_error_row_over_seeds_averages_each_seeds_summary():
    errors = np.array([[1.0, 3.0], [5.0, 7.0]])
    row = results.error_row_over_seeds(errors, (0, 1), (50,))
    assert row["mean"] == 4.0 and row["p50"] == 4.0
    assert row["per_seed_mean"] == {"0": 2.0, "1": 6.0}


def test_write_results_round_trips_and_renders(tmp_path, capsys):
    rows = {"wknn": {"mean": 1.23456, "n": 3}, "knn": {"mean": np.float32(2.0)}}
    extra = {"by month": results.table({"wknn": {"02": 1.5}}, ["02"])}
    results.write_results(str(tmp_path), "title", {"seed": 0}, rows, ["mean", "n"], extra, k=3)
    printed = capsys.readouterr().out
    assert "title" in printed and "1.235" in printed and "by month" in printed
    saved = results.read_results(str(tmp_path))
    assert saved["k"] == 3 and saved["results"]["knn"]["mean"] == 2.0
    assert json.loads((tmp_path / "results.json").read_text())["columns"] == ["mean", "n"]
    assert not list(tmp_path.glob(".*tmp*"))
    text = results.render(saved)
    assert text.splitlines()[4].split()[-1] == "-"  # knn has no n
    markdown = results.render(saved, markdown=True)
    assert "| wknn | 1.235 | 3 |" in markdown and "| wknn | 1.500 |" in markdown


def test_reading_a_run_without_results_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="results.json: no results"):
        results.read_results(str(tmp_path))

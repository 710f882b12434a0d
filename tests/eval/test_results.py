"""The results layer: summaries over seeds, results.json, printed and markdown tables, report."""

import json

import numpy as np
import pytest

from jaxfp.eval import results


def test_tables_over_seeds_show_n_and_the_interval_kind():
    rows = {"a": results.over_seeds([1.0, 2.0, 3.0], "rss"), "b": results.over_seeds([2.0], "rss")}
    text = results.render({"title": "t", "results": rows, "columns": ["rss", "rss_ci_low"]})
    header, _, a, b = text.splitlines()[1:5]
    assert header.split() == ["rss", "rss_ci_low", "n_seeds"]
    assert a.split() == ["a", "2.000", "-0.484", "3"]  # 2 - 4.302653 / sqrt(3)
    assert b.split() == ["b", "2.000", "-", "1"]  # one seed: no interval
    assert "Student-t 95%" in text


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

"""The drift benchmark (experiments/drift/benchmark.py): its test size end to end on the shipped
long-term cut, the table's structure and the values that can be checked against the methods' own
protocols and hand-computed t-intervals; its sizes and the months it refuses."""

import glob
import os
import pathlib
import shutil

import numpy as np
import pytest
import scipy.stats

from jaxfp import cli
from jaxfp.config import ConfigError, apply_overrides, config_module, load_config
from jaxfp.eval.results import read_results, render
from jaxfp.methods.baselines import knn_protocols
from jaxfp.methods.gufu.run import updated_databases

REPO = pathlib.Path(__file__).resolve().parents[2]
BENCHMARK = str(REPO / "experiments" / "drift" / "benchmark.py")
bench = config_module(BENCHMARK)
MONTHS = (2, 3)
SEEDS = (0, 1)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """The `:test` size run once through the command, and its results file read back."""
    workdir = str(tmp_path_factory.mktemp("drift"))
    assert bench.main(["--size", "test", "--workdir", workdir]) == 0
    return workdir, read_results(workdir)


def per_seed(row):
    return np.array([row["per_seed_mean_m"][str(s)] for s in SEEDS])


def t95(values):
    values = np.asarray(values, np.float64)
    half = scipy.stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return values.mean() - half, values.mean() + half


@pytest.mark.slow
def test_every_method_every_month_with_n_and_t_intervals(finished):
    workdir, results = finished
    rows = results["results"]
    expected = [f"month {m:02d} {method}" for m in MONTHS for method in bench.METHODS]
    expected += [f"months 02-03 {method}" for method in bench.METHODS]
    assert list(rows) == expected
    for name, row in rows.items():
        values = per_seed(row)
        assert row["n_seeds"] == len(SEEDS) and row["interval"] == "t95", name
        assert row["mean_m"] == pytest.approx(values.mean()), name
        low, high = t95(values)
        assert (row["mean_m_ci_low"], row["mean_m_ci_high"]) == pytest.approx((low, high)), name
        assert np.all(values > 0), name
    for method in bench.METHODS:  # the mean over the months: each seed's mean of its months
        months = np.mean([per_seed(rows[f"month {m:02d} {method}"]) for m in MONTHS], 0)
        assert per_seed(rows[f"months 02-03 {method}"]) == pytest.approx(months)
    # FPN's seeds differ (own walks and initialisation): a real interval, not a copied value
    fpn = per_seed(rows["month 03 fpn fine-tuned"])
    assert fpn[0] != fpn[1] and rows["month 03 fpn fine-tuned"]["mean_m_ci_low"] < fpn.min()
    by_month = results["tables"][bench.BY_MONTH_TABLE]
    assert by_month["columns"] == ["02", "03", "mean"]
    for method in bench.METHODS:
        assert by_month["rows"][method]["03"] == rows[f"month 03 {method}"]["mean_m"]
        assert by_month["rows"][method]["mean"] == rows[f"months 02-03 {method}"]["mean_m"]
    assert list(results["tables"][bench.ROWS_TABLE]["rows"]) == list(bench.METHODS)


@pytest.mark.slow
def test_wknn_rows_are_the_knn_protocols_numbers(finished, tmp_path):
    _, results = finished
    rows = results["results"]
    knn = knn_protocols.train_and_evaluate(
        load_config(str(REPO / "experiments" / "baselines" / "knn_longterm.py:test")),
        str(tmp_path),
    )
    for m in MONTHS:
        static = knn[f"{m:02d}"]["wknn3_positive/first_month mean"]
        resurveyed = knn[f"{m:02d}"]["wknn3_positive/same_month mean"]
        assert per_seed(rows[f"month {m:02d} wknn static"]) == pytest.approx([static] * 2)
        assert per_seed(rows[f"month {m:02d} wknn resurveyed"]) == pytest.approx([resurveyed] * 2)
        # same-month references: the resurvey locates the month's scans better than month 1's
        assert resurveyed < static


@pytest.mark.slow
def test_learned_rows_are_their_protocols_rows(finished):
    workdir, results = finished
    rows = results["results"]
    itoloc = read_results(os.path.join(workdir, "itoloc"))["results"]
    fpn = read_results(os.path.join(workdir, "fpn"))["results"]
    for m in MONTHS:
        assert per_seed(rows[f"month {m:02d} itoloc updated"]) == pytest.approx(
            per_seed(itoloc[f"month {m:02d} itoloc, updated"])
        )
        assert per_seed(rows[f"month {m:02d} fpn fine-tuned"]) == pytest.approx(
            per_seed(fpn[f"month {m:02d} fpn, fine-tuned"])
        )
    # GUFU's row is WkNN on the database `updated_databases` leaves (recomputed here, seed 1)
    config = load_config(f"{BENCHMARK}:test")
    parts = bench.sections(config)
    variant = parts["wknn"].variants.wknn3_positive
    for period, database in updated_databases(parts["gufu"], "gufu", 1):
        assert database.n == 96 and database.xy.shape == (96, 2)  # month 1's records, all kept
        aps = database.ap_ids.tolist() + [
            a for a in period.batch.ap_ids if a not in database.ap_ids
        ]
        report, _ = knn_protocols.run_variant(
            database.select_aps(aps), period.batch.select_aps(aps), variant, parts["wknn"]
        )
        row = rows[f"month {period.number:02d} gufu + wknn"]
        assert row["per_seed_mean_m"]["1"] == pytest.approx(report["mean"])


@pytest.mark.slow
def test_paired_differences_against_static_wknn(finished):
    _, results = finished
    rows, paired = results["results"], results["tables"][bench.PAIRED_TABLE]["rows"]
    others = [m for m in bench.METHODS if m != bench.STATIC]
    expected = [f"month {m:02d}: {o} - wknn static" for m in MONTHS for o in others]
    assert list(paired) == expected + [f"months 02-03: {o} - wknn static" for o in others]
    for m in MONTHS:
        for other in others:
            row = paired[f"month {m:02d}: {other} - wknn static"]
            diff = per_seed(rows[f"month {m:02d} {other}"]) - per_seed(
                rows[f"month {m:02d} wknn static"]
            )
            assert row["diff_m"] == pytest.approx(diff.mean())
            assert (row["diff_m_ci_low"], row["diff_m_ci_high"]) == pytest.approx(t95(diff))
            assert row["n_seeds"] == 2 and row["verdict"] == "no verdict (n < 5)"


@pytest.mark.slow
def test_report_renders_it_and_the_plot_is_beside_it(finished, capsys):
    workdir, results = finished
    assert results["plot"] == "error_by_month.png"
    with open(os.path.join(workdir, results["plot"]), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert cli.main(["report", workdir, "--markdown"]) == 0
    out = capsys.readouterr().out
    assert "| month 03 gufu + wknn |" in out and bench.PAIRED_TABLE in out
    assert "Student-t 95% interval" in render(results)
    assert not glob.glob(os.path.join(workdir, ".*tmp-*"))  # written atomically, nothing left


@pytest.mark.slow
def test_a_rerun_reuses_gufu_s_finished_seeds(finished, tmp_path, capsys):
    workdir, results = finished
    shutil.copytree(os.path.join(workdir, "gufu"), tmp_path / "gufu")
    config = apply_overrides(
        load_config(f"{BENCHMARK}:test"),
        ["--config.run_methods=('wknn static', 'gufu + wknn')"],
    )
    again = bench.run(config, str(tmp_path))
    assert capsys.readouterr().out.count("finished earlier, reused") == 2
    assert list(again["rows"]) == [
        f"{at} {method}"
        for at in ("month 02", "month 03", "months 02-03")
        for method in ("wknn static", "gufu + wknn")
    ]
    for name, row in again["rows"].items():
        assert row == results["results"][name]


def test_sizes_are_checked(tmp_path):
    assert bench.SIZES == ("", "test")
    with pytest.raises(ConfigError, match=r"unknown size 'tset'; sizes are '' \(default\), 'test'"):
        load_config(f"{BENCHMARK}:tset")
    assert bench.main(["--size", "tset", "--workdir", str(tmp_path)]) == 2
    default = load_config(BENCHMARK)
    assert default.reported_months == tuple(range(9, 16)) and default.seeds == (0, 1, 2, 3, 4)
    parts = bench.sections(default)  # the methods' default drift configs cover months 9-15
    assert set(default.reported_months) <= set(parts["fpn"].data.months)
    assert not set(default.reported_months) & set(parts["fpn"].data.validation_months)
    assert all(parts[k].seeds == default.seeds for k in ("gufu", "itoloc", "fpn"))


def test_months_a_method_does_not_run_and_unknown_rows_are_refused():
    config = apply_overrides(load_config(f"{BENCHMARK}:test"), ["--config.reported_months=(2, 4)"])
    with pytest.raises(ConfigError, match=r"config.itoloc.data.months: \[2, 3\] lacks .*\[4\]"):
        bench.sections(config)
    config = apply_overrides(load_config(f"{BENCHMARK}:test"), ["--config.run_methods=('knn',)"])
    with pytest.raises(ConfigError, match="config.run_methods: expected some of"):
        bench.sections(config)

import numpy as np
import pytest

from jaxfp import eval as ev


def test_errors_and_summary_by_hand():
    err = ev.position_errors(np.array([[3.0, 4.0], [0.0, 0.0]]), np.zeros((2, 2)))
    np.testing.assert_allclose(err, [5.0, 0.0])
    s = ev.error_summary(np.arange(1, 101, dtype=float))
    assert s["mean"] == 50.5 and s["median"] == 50.5 and s["max"] == 100
    assert s["p90"] == pytest.approx(np.percentile(np.arange(1, 101), 90))
    assert set(f"p{q}" for q in ev.PERCENTILES) <= set(s)
    with pytest.raises(ValueError):
        ev.position_errors(np.zeros((2, 3)), np.zeros((2, 3)))


def test_rates_and_rss_errors():
    assert ev.hit_rate([1, 2, 3, 4], [1, 2, 0, 4]) == 0.75
    assert ev.region_success_rate(np.array([1.0, 2.0, 6.0]), 5.0) == pytest.approx(2 / 3)
    assert ev.region_success_rate(
        np.array([1.0, 2.0, 6.0]), 5.0, [True, False, True]
    ) == pytest.approx(1 / 3)
    truth = np.array([[-50.0, -60.0], [-70.0, -80.0]])
    est = truth + np.array([[1.0, -1.0], [3.0, 0.0]])
    mask = np.array([[True, True], [False, True]])
    assert ev.rss_rmse(est, truth, mask) == pytest.approx(np.sqrt(2 / 3))
    assert ev.rss_mae(est, truth, mask) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="rss_mae: empty mask"):
        ev.rss_mae(est, truth, np.zeros_like(mask))
    assert ev.rss_nrmse(est, truth) == pytest.approx(
        np.sqrt(np.mean((est - truth) ** 2)) / np.sqrt(np.mean(truth**2))
    )


def test_bootstrap_ci_brackets_the_mean():
    values = np.random.default_rng(0).normal(10.0, 2.0, 400)
    low, high = ev.bootstrap_ci(values, seed=1)
    assert low < values.mean() < high and high - low < 1.0
    assert ev.bootstrap_ci(values, seed=1) == (low, high)


def test_report_and_plots(tmp_path):
    rng = np.random.default_rng(0)
    truth = rng.uniform(0, 10, (50, 2))
    pred = truth + rng.normal(0, 1, (50, 2))
    floors = rng.integers(0, 3, 50)
    report = ev.positioning_report(pred, truth, floors, floors, floors * 0, floors * 0)
    assert report["floor_hit_rate"] == 1.0 and report["building_hit_rate"] == 1.0
    errors = ev.position_errors(pred, truth)
    assert (report["mean_ci_low"], report["mean_ci_high"]) == ev.bootstrap_ci(errors, seed=0)
    assert report["mean"] == pytest.approx(errors.mean())
    cdf = ev.cdf_plot({"a": ev.position_errors(pred, truth)}, tmp_path / "cdf.png", title="t")
    rss = np.where(rng.random(50) < 0.2, np.nan, rng.uniform(-90, -40, 50))
    heat = ev.radio_map_plot(truth, rss, tmp_path / "map.png")
    for path in (cdf, heat):
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_percentile_bar_plot(tmp_path):
    rng = np.random.default_rng(1)
    path = ev.percentile_bar_plot(
        {"a": rng.random(50), "b": 2 * rng.random(50)}, tmp_path / "bars.png"
    )
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"

"""Intervals over seeds against hand-computed Student-t values; paired differences and verdicts."""

import math

import numpy as np
import pytest

from jaxfp.eval import stats


def test_t_interval_by_hand():
    # 1.75, 1.85, 1.95: mean 1.85, sd 0.1, t(0.975, 2) = 4.302653: half width 0.248414
    low, high = stats.t_interval([1.75, 1.85, 1.95])
    assert low == pytest.approx(1.85 - 4.302653 * 0.1 / math.sqrt(3), abs=1e-6)
    assert high == pytest.approx(1.85 + 4.302653 * 0.1 / math.sqrt(3), abs=1e-6)
    assert (round(low, 2), round(high, 2)) == (1.60, 2.10)  # not the min-max [1.75, 1.95]


def test_t_interval_five_seeds_by_hand():
    x = [2.0, 2.2, 1.9, 2.4, 2.1]  # mean 2.12, sd sqrt(0.037) = 0.192354, t(0.975, 4) = 2.776445
    low, high = stats.t_interval(x)
    half = 2.776445 * math.sqrt(0.037) / math.sqrt(5)
    assert (low, high) == pytest.approx((2.12 - half, 2.12 + half), abs=1e-6)


def test_over_seeds_row_names_n_and_kind():
    row = stats.over_seeds([1.0, 2.0, 3.0], "rss")
    assert row["rss"] == 2.0 and row["n_seeds"] == 3 and row["interval"] == "t95"
    assert row["rss_ci_high"] - row["rss"] == pytest.approx(4.302653 * 1.0 / math.sqrt(3), 1e-6)
    one = stats.over_seeds([4.0])
    assert one["mean"] == 4.0 and math.isnan(one["mean_ci_low"]) and one["n_seeds"] == 1


def test_bad_per_seed_values_are_refused():
    with pytest.raises(ValueError, match="non-finite"):
        stats.t_interval([1.0, float("nan")])
    with pytest.raises(ValueError, match="no per-seed values"):
        stats.over_seeds([])
    with pytest.raises(ValueError, match="1-D"):
        stats.t_interval(np.ones((2, 2)))


def test_paired_difference_sees_what_unpaired_intervals_hide():
    # B is A + 0.1 on every seed; the seeds themselves spread widely, so the two rows' intervals
    # overlap, but the paired difference is exactly -0.1 on each seed.
    a = np.array([1.0, 3.0, 2.0, 5.0, 4.0])
    row = stats.paired_difference(a, a + 0.1, "a_minus_b")
    assert row["a_minus_b"] == pytest.approx(-0.1)
    assert row["a_minus_b_ci_high"] == pytest.approx(-0.1) and row["verdict"] == "A better"
    assert stats.paired_difference(a + 0.1, a)["verdict"] == "B better"
    assert stats.paired_difference(a + 0.1, a, lower_is_better=False)["verdict"] == "A better"


def test_verdicts():
    assert stats.verdict(-0.3, -0.1, 5) == "A better"
    assert stats.verdict(0.1, 0.3, 5) == "B better"
    assert stats.verdict(-0.1, 0.3, 9) == "no difference shown"
    assert stats.verdict(-0.3, -0.1, 4) == "no verdict (n < 5)"
    with pytest.raises(ValueError, match="equal 1-D"):
        stats.paired_difference([1.0, 2.0], [1.0])


def test_paired_rows_names_pairs_and_skips_rows_that_did_not_run():
    per_seed = {"a": [1.0, 2.0, 3.0, 4.0, 5.0], "b": [1.5, 2.5, 3.5, 4.5, 5.5]}
    rows = stats.paired_rows(per_seed, [("a", "b"), ("ours", "b", "a"), ("a", "missing")], "d")
    assert list(rows) == ["a - b", "ours"]
    assert rows["a - b"]["d"] == pytest.approx(-0.5) and rows["a - b"]["verdict"] == "A better"
    assert rows["ours"]["d"] == pytest.approx(0.5) and rows["ours"]["verdict"] == "B better"

"""ISO/IEC 18305 and IPIN metrics against hand-computed values."""

import ml_collections
import numpy as np
import pytest

from jaxfp import eval as ev
from jaxfp.eval import iso18305

# Four queries, all true positions at the origin: 2-D errors 5, 1, 2, 10 m (sorted 1, 2, 5, 10).
PRED_XY = np.array([[3.0, 4.0], [0.0, 1.0], [0.0, 2.0], [6.0, 8.0]])
TRUE_XY = np.zeros((4, 2))
TRUE_FLOOR = np.array([0, 0, 1, 2])
PRED_FLOOR = np.array([0, 1, 1, 0])  # floor differences 0, +1, 0, -2
TRUE_BUILDING = np.array([0, 0, 0, 1])
PRED_BUILDING = np.array([0, 0, 1, 1])  # the third query is in the wrong building


def test_the_constants_are_the_fields():
    assert iso18305.FLOOR_PENALTY_M == 15.0
    assert iso18305.BUILDING_PENALTY_M == 50.0
    assert iso18305.FLOOR_HEIGHT_M == 3.7
    c = ev.StandardConstants()
    assert (c.floor_penalty_m, c.building_penalty_m, c.floor_height_m) == (15.0, 50.0, 3.7)


def test_summary_of_four_errors_by_hand():
    s = iso18305.summary(np.array([5.0, 1.0, 2.0, 10.0]))
    assert s["mean"] == 4.5
    assert s["median"] == 3.5
    assert s["rmse"] == pytest.approx(np.sqrt((25 + 1 + 4 + 100) / 4))  # 5.70088
    assert s["p75"] == pytest.approx(6.25)  # rank 0.75 * 3 = 2.25: 5 + 0.25 * (10 - 5)
    assert s["p95"] == pytest.approx(9.25)  # rank 2.85: 5 + 0.85 * 5
    # MATLAB's quantile (the IPIN scoring script) puts the sorted values at (i - 0.5) / n.
    hazen = iso18305.summary(np.array([5.0, 1.0, 2.0, 10.0]), "hazen")
    assert hazen["p75"] == pytest.approx(7.5) and hazen["p95"] == 10.0
    with pytest.raises(ValueError, match="no errors"):
        iso18305.summary(np.array([]))


def test_a_floor_miss_adds_15_m_per_floor_either_way():
    xy = np.array([[3.0, 4.0]])  # 5 m
    for predicted, true, expected in [(1, 0, 20.0), (0, 1, 20.0), (0, 2, 35.0), (3, 1, 35.0)]:
        got = ev.penalised_errors(xy, np.zeros((1, 2)), np.array([predicted]), np.array([true]))
        assert got.tolist() == [expected], (predicted, true)
    hit = ev.penalised_errors(xy, np.zeros((1, 2)), np.array([2]), np.array([2]))
    assert hit.tolist() == [5.0]


def test_a_building_miss_adds_exactly_50_m():
    xy, zero = np.array([[3.0, 4.0]]), np.zeros((1, 2))
    floor = np.array([1])
    wrong = ev.penalised_errors(xy, zero, floor, floor, np.array([2]), np.array([0]))
    right = ev.penalised_errors(xy, zero, floor, floor, np.array([0]), np.array([0]))
    assert wrong.tolist() == [55.0] and right.tolist() == [5.0]
    # Both at once, and the constants are arguments.
    both = ev.penalised_errors(xy, zero, np.array([0]), floor, np.array([1]), np.array([0]))
    assert both.tolist() == [70.0]
    custom = ev.penalised_errors(xy, zero, np.array([0]), floor, np.array([1]), np.array([0]), 4, 1)
    assert custom.tolist() == [10.0]


def test_3d_error_by_hand():
    e3 = ev.errors_3d(PRED_XY, TRUE_XY, PRED_FLOOR, TRUE_FLOOR)
    np.testing.assert_allclose(e3, [5.0, np.sqrt(1 + 3.7**2), 2.0, np.sqrt(100 + 7.4**2)])
    e3 = ev.errors_3d(PRED_XY, TRUE_XY, PRED_FLOOR, TRUE_FLOOR, floor_height_m=4.0)
    np.testing.assert_allclose(e3, [5.0, np.sqrt(17.0), 2.0, np.sqrt(164.0)])
    with pytest.raises(ValueError, match="floors: expected two"):
        ev.errors_3d(PRED_XY, TRUE_XY, PRED_FLOOR[:3], TRUE_FLOOR)


def test_standard_report_by_hand():
    r = ev.standard_report(PRED_XY, TRUE_XY, PRED_FLOOR, TRUE_FLOOR, PRED_BUILDING, TRUE_BUILDING)
    assert r["2d_mean"] == 4.5 and r["2d_median"] == 3.5 and r["2d_p75"] == pytest.approx(6.25)
    # IPIN: 5 + 0, 1 + 15, 2 + 50, 10 + 30 -> 5, 16, 52, 40 (sorted 5, 16, 40, 52)
    assert r["ipin_mean"] == pytest.approx(113 / 4)
    assert r["ipin_median"] == pytest.approx(28.0)
    assert r["ipin_rmse"] == pytest.approx(np.sqrt((25 + 256 + 2704 + 1600) / 4))
    assert r["ipin_p75"] == pytest.approx(43.0)  # rank 2.25: 40 + 0.25 * 12
    assert r["ipin_p95"] == pytest.approx(50.2)  # rank 2.85: 40 + 0.85 * 12
    e3 = [5.0, np.sqrt(1 + 3.7**2), 2.0, np.sqrt(100 + 7.4**2)]
    assert r["3d_mean"] == pytest.approx(np.mean(e3))
    assert r["3d_rmse"] == pytest.approx(np.sqrt(np.mean(np.square(e3))))
    assert r["floor_hit_rate"] == 0.5 and r["building_hit_rate"] == 0.75
    # Constants from a config's eval section; what it lacks keeps its default.
    constants = ev.StandardConstants.from_config(
        ml_collections.ConfigDict(dict(success_radius_m=5.0, floor_penalty_m=4.0))
    )
    assert constants == ev.StandardConstants(floor_penalty_m=4.0)
    r4 = ev.standard_report(
        PRED_XY, TRUE_XY, PRED_FLOOR, TRUE_FLOOR, PRED_BUILDING, TRUE_BUILDING, constants
    )
    assert r4["ipin_mean"] == pytest.approx((5 + 5 + 52 + 18) / 4)
    assert ev.StandardConstants.from_config(None) == ev.StandardConstants()


def test_without_floors_only_the_2d_fields():
    r = ev.standard_report(PRED_XY, TRUE_XY)
    assert sorted(r) == sorted(f"2d_{k}" for k in iso18305.STATISTICS)
    r = ev.standard_report(PRED_XY, TRUE_XY, PRED_FLOOR, TRUE_FLOOR)  # floors, no buildings
    assert r["ipin_mean"] == pytest.approx((5 + 16 + 2 + 40) / 4)
    assert "building_hit_rate" not in r


def test_coded_report_splits_the_codes_it_is_given():
    def split(code):  # a stand-in encoding: building * 100 + floor
        code = np.asarray(code)
        return code % 100, code // 100

    pred_code = 100 * np.asarray(PRED_BUILDING) + np.asarray(PRED_FLOOR)
    true_code = 100 * np.asarray(TRUE_BUILDING) + np.asarray(TRUE_FLOOR)
    coded = iso18305.coded_report(PRED_XY, TRUE_XY, pred_code, true_code, split)
    assert coded == ev.standard_report(
        PRED_XY, TRUE_XY, PRED_FLOOR, TRUE_FLOOR, PRED_BUILDING, TRUE_BUILDING
    )
    flat = iso18305.coded_report(PRED_XY, TRUE_XY, pred_code, true_code, split, floors=False)
    assert "ipin_mean" not in flat and flat["2d_mean"] == 4.5
    assert flat["building_hit_rate"] == 0.75


def test_standard_table_and_majority_label():
    rows = {
        "a": ev.standard_report(PRED_XY, TRUE_XY, PRED_FLOOR, TRUE_FLOOR),
        "b": {"mean": 1.0},
    }
    constants = ev.StandardConstants()
    tables = ev.standard_table(rows, constants)
    ((caption, extra),) = tables.items()
    assert "15 m per floor of difference" in caption and "50 m per wrong building" in caption
    assert "3.7 m per floor" in caption
    assert list(extra["rows"]) == ["a"]
    assert "building_hit_rate" not in extra["columns"] and extra["columns"][0] == "2d_mean"
    assert ev.standard_table({"b": {"mean": 1.0}}, constants) == {}
    assert ev.majority_label(np.array([3, 1, 3, 2]), 2).tolist() == [3, 3]
    assert ev.majority_label(None, 2) is None


def test_eval_section_holds_the_constants_and_a_protocols_own_fields():
    section = iso18305.eval_section(success_radius_m=3.0, floor_penalty_m=4.0)
    assert section.to_dict() == {
        "floor_height_m": 3.7,
        "floor_penalty_m": 4.0,
        "building_penalty_m": 50.0,
        "success_radius_m": 3.0,
    }
    constants = iso18305.StandardConstants.from_config(section)
    assert constants == iso18305.StandardConstants(floor_penalty_m=4.0)


def test_the_floor_of_positions_from_their_height_or_the_one_floor():
    floors = np.array([3, 5])
    heights = np.array([[0.0, 0.0, 13.0], [1.0, 1.0, 17.0], [2.0, 2.0, 50.0]])
    np.testing.assert_array_equal(iso18305.estimated_floors(heights, 4.0, floors), [3, 5, 5])
    flat = heights[:, :2]
    np.testing.assert_array_equal(iso18305.estimated_floors(flat, 4.0, floors[:1]), [3, 3, 3])
    assert iso18305.estimated_floors(flat, 4.0, floors) is None  # floors pooled into 2-D

"""FPN's rows carry the ISO/IEC 18305 and IPIN fields of the points its estimates name, beside the
numbers they had before, pooled over months and picked per seed like them."""

import numpy as np
import pytest

from jaxfp.config import apply_overrides, load_config
from jaxfp.data.places import ReferencePoints, floor_code_of, split_floor_code
from jaxfp.eval.iso18305 import StandardConstants
from jaxfp.methods.fpn.data import Scans, Walks
from jaxfp.methods.fpn.report import pooled, row_of, standard_scores
from jaxfp.methods.fpn.study import Study

from ...conftest import REPO

SYNTHETIC = str(REPO / "experiments" / "fpn" / "synthetic.py:test")
# Two points: (0, 0) on floor 0 and (3, 4) on floor 2; every walk step is at (0, 0) on floor 0.
POINTS = ReferencePoints(np.array([[0.0, 0.0], [3.0, 4.0]]), np.array([0, 2]))
SCANS = Scans(np.zeros((2, 1)), np.zeros((2, 2)), np.zeros(2, np.int64), np.zeros(2, np.int64))
WALKS = [Walks(SCANS, np.array([[0, 1]]))] * 2  # each seed: one walk of two steps
FOUND = np.array([[[1, 0]], [[0, 0]]])  # seed 0 names point 1 first: 5 m off, two floors up


def study(tmp_path, *overrides: str) -> Study:
    config = apply_overrides(load_config(SYNTHETIC), list(overrides))
    return Study(config, str(tmp_path), POINTS, {})


def test_a_row_scores_the_floor_of_the_point_the_network_names(tmp_path):
    scores = study(tmp_path).point_scores(FOUND, WALKS)
    # Seed 0: 5 m + 15 m per floor x 2 floors, then 0 m; seed 1: 0 m twice.
    np.testing.assert_allclose(scores["standard"]["ipin_mean"], [17.5, 0.0])
    np.testing.assert_allclose(scores["standard"]["3d_mean"], [np.hypot(5.0, 7.4) / 2, 0.0])
    np.testing.assert_allclose(scores["standard"]["floor_hit_rate"], [0.5, 1.0])
    row = row_of(scores, (0, 1))
    assert row["ipin_mean"] == pytest.approx(8.75) and row["floor_hit_rate"] == 0.75
    # The fields the row had before are the same numbers, and the 2-D fields repeat them.
    assert row["mean_m"] == 1.25 and row["floor_hit"] == 0.75
    assert row["2d_mean"] == row["mean_m"] and row["2d_p95"] == pytest.approx(row["p95_m"])
    plain = {k: v for k, v in scores.items() if k != "standard"}
    assert row_of(plain, (0, 1)) == {k: v for k, v in row.items() if k in row_of(plain, (0, 1))}
    # The constants come from config.eval.
    four = study(tmp_path, "--config.eval.floor_penalty_m=4").point_scores(FOUND, WALKS)
    np.testing.assert_allclose(four["standard"]["ipin_mean"], [6.5, 0.0])


def test_floor_codes_split_into_floor_and_building():
    floor, building = np.array([-1, 0, 3, 49]), np.array([2, 0, 1, 0])
    got = split_floor_code(floor_code_of(floor, building), buildings=True)
    assert got[0].tolist() == floor.tolist() and got[1].tolist() == building.tolist()
    code, none = split_floor_code(np.array([3, 5]), buildings=False)
    assert code.tolist() == [3, 5] and none is None
    # A wrong building costs 50 m, a floor of difference 15 m (codes: building 1, floors 1 and 3).
    xy, zero = np.array([[[0.0, 1.0], [3.0, 4.0]]]), np.zeros((1, 2, 2))
    codes, truth = np.array([[201, 103]]), np.array([[101, 101]])
    s = standard_scores(xy, zero, codes, truth, StandardConstants(), buildings=True)
    assert s["ipin_mean"].tolist() == [((1 + 50) + (5 + 30)) / 2]
    assert s["building_hit_rate"].tolist() == [0.5] and s["floor_hit_rate"].tolist() == [0.5]


def test_pooled_months_score_every_step_of_both(tmp_path):
    s = study(tmp_path)
    months = [s.point_scores(FOUND, WALKS), s.point_scores(np.ones_like(FOUND), WALKS)]
    both = pooled(months, s.standard_of)
    # Seed 0 over both months: 35, 0, 35, 35 m; seed 1: 0, 0, 35, 35 m.
    np.testing.assert_allclose(both["standard"]["ipin_mean"], [26.25, 17.5])
    without = pooled(months)
    assert "standard" not in without
    for key in ("mean_m", "p95_m", "floor_hit"):
        np.testing.assert_array_equal(both[key], without[key])

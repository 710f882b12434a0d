import math

import numpy as np
import pytest

from jaxfp import data
from jaxfp.data import representations, splits, synthetic

RSS = np.array([[-40.0, np.nan, -90.0]], np.float32)
DET = np.array([[True, False, True]])


@pytest.mark.parametrize(
    "kind, expected",
    [
        ("dbm", [-40.0, -100.0, -90.0]),
        ("positive", [60.0, 0.0, 10.0]),
        (
            "exponential",
            [math.exp(60 / 24) / math.exp(100 / 24), 0.0, math.exp(10 / 24) / math.exp(100 / 24)],
        ),
        ("powed", [(60 / 100) ** math.e, 0.0, (10 / 100) ** math.e]),
        ("gufu", [80 / 120, 0.0, 30 / 120]),
    ],
)
def test_representations_by_hand(kind, expected):
    out = data.represent(RSS, DET, kind, min_rss=-100.0)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[0], expected, rtol=1e-6)


def test_fit_min_rss_and_bad_kind():
    assert representations.fit_min_rss(RSS, DET) == -91.0
    with pytest.raises(ValueError, match="representation: expected one of"):
        data.represent(RSS, DET, "log", -100.0)


def _grid_set():
    world = synthetic.make_world(synthetic.WorldParams(width_m=20, height_m=10), seed=0)
    return synthetic.survey(world, samples_per_rp=3, seed=1)


def test_split_by_rp_is_disjoint_and_reproducible():
    fs = _grid_set()
    parts = data.split_by_rp(fs, [0.6, 0.2, 0.2], seed=3)
    rps = [set(p.rp_id.tolist()) for p in parts]
    assert sum(p.n for p in parts) == fs.n
    assert not (rps[0] & rps[1]) and not (rps[0] & rps[2]) and not (rps[1] & rps[2])
    n_rp = len(np.unique(fs.rp_id))
    assert abs(len(rps[0]) - 0.6 * n_rp) <= 1
    again = data.split_by_rp(fs, [0.6, 0.2, 0.2], seed=3)
    np.testing.assert_array_equal(parts[1].xy, again[1].xy)
    with pytest.raises(ValueError, match="summing to 1"):
        data.split_by_rp(fs, [0.5, 0.2], seed=0)


def test_labelled_split_fraction_and_per_rp():
    fs = _grid_set()
    lab, unlab = data.labelled_split(fs, 0.1, seed=0)
    assert lab.n + unlab.n == fs.n and abs(lab.n - round(0.1 * fs.n)) <= 1
    lab_rp, _ = data.labelled_split(fs, 0.3, seed=0, per_rp=True)
    # One of three samples at every reference point.
    assert set(lab_rp.rp_id.tolist()) == set(fs.rp_id.tolist()) and lab_rp.n == len(
        np.unique(fs.rp_id)
    )
    idx, rest = splits.labelled_indices(10, 0.5, seed=1)
    assert len(np.intersect1d(idx, rest)) == 0

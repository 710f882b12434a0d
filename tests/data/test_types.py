import dataclasses

import numpy as np
import pytest

from jaxfp import data
from jaxfp.data.types import from_raw


def small(raw=None, xy=None, **labels):
    raw = (
        np.array([[-50, 100, -70], [-60, -80, 100], [-50, 100, -70]], float) if raw is None else raw
    )
    xy = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]]) if xy is None else xy
    return from_raw(raw, 100, ["a", "b", "c"], xy=xy, source="mem", **labels)


def test_marker_becomes_mask_and_rp_ids_follow_positions():
    fs = small(floor=np.array([0, 0, 1]))
    np.testing.assert_array_equal(fs.detected, [[1, 0, 1], [1, 1, 0], [1, 0, 1]])
    assert np.isnan(fs.rss[0, 1]) and fs.rss[0, 0] == -50
    # Rows 0 and 2 share x, y but not the floor: three reference points.
    assert len(set(fs.rp_id.tolist())) == 3
    assert len(set(small().rp_id.tolist())) == 2


def test_validation_names_the_field():
    fs = small()
    with pytest.raises(data.DataFormatError, match=r"mem, field 'xy'"):
        dataclasses.replace(fs, xy=np.zeros((3, 3)))
    with pytest.raises(data.DataFormatError, match=r"field 'ap_ids': expected unique"):
        dataclasses.replace(fs, ap_ids=np.array(["a", "a", "c"]))
    with pytest.raises(data.DataFormatError, match=r"field 'rss'.*NaN wherever not detected"):
        dataclasses.replace(fs, rss=np.nan_to_num(fs.rss, nan=-100.0).astype(np.float32))
    with pytest.raises(data.DataFormatError, match=r"mem, row 2, field 'xy'"):
        small(xy=np.array([[0.0, 0.0], [0.0, 0.0], [np.inf, 0.0]]))
    with pytest.raises(data.DataFormatError, match=r"at least one fingerprint row"):
        small(raw=np.zeros((0, 3)), xy=np.zeros((0, 2)))


def test_subset_select_aps_and_concat():
    fs = small(floor=np.array([0, 1, 0]), domain={"month": np.array([1, 1, 2])})
    sub = fs.subset([2, 0])
    assert sub.n == 2 and sub.domain["month"].tolist() == [2, 1]
    wide = fs.select_aps(["c", "z", "a"])
    assert wide.ap_ids.tolist() == ["c", "z", "a"] and not wide.detected[:, 1].any()
    np.testing.assert_array_equal(wide.detected[:, 0], fs.detected[:, 2])
    both = data.concat([fs, wide])
    assert both.n == 6 and both.ap_ids.tolist() == ["a", "b", "c", "z"]
    # `wide` dropped AP b and added the never-seen z.
    np.testing.assert_array_equal(both.detected[3:, [0, 2]], fs.detected[:, [0, 2]])
    assert not both.detected[3:, [1, 3]].any() and not both.detected[:3, 3].any()
    assert both.domain["month"].tolist() == [1, 1, 2, 1, 1, 2]
    assert both.summary()["samples"] == 6

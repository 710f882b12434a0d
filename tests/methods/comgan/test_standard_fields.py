"""The CNN localizer's rows carry the ISO/IEC 18305 and IPIN fields on a real set with floor
labels (its floor: the set's floor nearest the estimated height), beside the numbers they had."""

import numpy as np
import pytest

from jaxfp.config import load_config
from jaxfp.eval.iso18305 import StandardConstants
from jaxfp.methods.comgan import data
from jaxfp.methods.comgan.run import localization_row, localizer_standard

from ...conftest import REPO

SPEC = str(REPO / "experiments" / "comgan" / "completion.py:uji_test")


def two_floor_draw(building=None) -> data.Draw:
    """Three positions on floors 3 and 5 (RP heights 4 m per floor), two samples per RP."""
    xy = np.array([[0.0, 0.0], [10.0, 0.0], [20.0, 0.0]])
    rp_xy = np.array([[x, y, 4.0 * f] for f in (3, 5) for x, y in xy])
    rp = np.repeat(np.arange(6), 2)
    rss = np.random.default_rng(0).normal(-60, 5, (12, 2)).astype(np.float32)
    floor = np.where(rp_xy[rp, 2] == 12.0, 3, 5)
    ru = data.RuSet(rss, rp, rp_xy, np.array(["a", "b"]), "hand", floor, building)
    return data.make_draw(ru, (1, 1, 1), seed=0)


def test_a_floor_miss_adds_15_m_per_floor_and_the_old_fields_stay():
    d = two_floor_draw()
    rows = d.rows["loc_test"]
    truth = d.scale.xy_out(d.p[rows])
    estimate = truth + [3.0, 4.0, 0.0]  # 5 m off in x, y
    estimate[0, 2] = 32.0 - truth[0, 2]  # the first sample's height: the other floor's
    got = localizer_standard(d, estimate, 4.0, StandardConstants())
    n = len(rows)
    assert got["2d_mean"] == pytest.approx(5.0)
    assert got["ipin_mean"] == pytest.approx(5.0 + 2 * 15.0 / n)  # two floors apart
    assert got["3d_mean"] == pytest.approx((5.0 * (n - 1) + np.hypot(5.0, 2 * 3.7)) / n)
    assert got["floor_hit_rate"] == (n - 1) / n and "building_hit_rate" not in got
    four = localizer_standard(d, estimate, 4.0, StandardConstants(floor_penalty_m=4.0))
    assert four["ipin_mean"] == pytest.approx(5.0 + 8.0 / n)
    # The row: mean and RMS error over the RP coordinates as before, each seed's standard fields
    # averaged over the seeds.
    row = localization_row([d, d], [estimate, truth], 4.0, StandardConstants())
    errors = np.linalg.norm(estimate - truth, axis=-1)
    assert row["per_seed_mean_m"] == [float(errors.mean()), 0.0]
    assert row["per_seed_rmse_m"] == [float(np.sqrt(np.mean(errors**2))), 0.0]
    assert row["mean_m"] == pytest.approx(errors.mean() / 2)
    assert row["ipin_mean"] == pytest.approx(got["ipin_mean"] / 2)
    assert row["floor_hit_rate"] == pytest.approx((got["floor_hit_rate"] + 1.0) / 2)


def test_one_building_is_always_hit_and_the_synthetic_room_has_no_fields():
    d = two_floor_draw(building=np.full(12, 7))
    truth = d.scale.xy_out(d.p[d.rows["loc_test"]])
    got = localizer_standard(d, truth + [3.0, 4.0, 0.0], 4.0, StandardConstants())
    assert got["building_hit_rate"] == 1.0 and got["ipin_mean"] == pytest.approx(5.0)
    room = d._replace(ru=d.ru._replace(floor=None, building=None))
    assert localizer_standard(room, truth, 4.0, StandardConstants()) == {}
    row = localization_row([room], [truth + [3.0, 4.0, 0.0]], 4.0, StandardConstants())
    assert not any(k.startswith(("2d_", "ipin_")) for k in row) and row["mean_m"] == 5.0


def test_a_real_set_keeps_its_floor_labels_and_the_config_its_constants():
    config = load_config(SPEC)
    ru = data.load_ru_set(config)
    assert ru.floor is not None and (ru.floor == 3).all()  # the shipped cut: one floor
    assert data.load_ru_set(load_config(SPEC.replace(":uji_test", ":test"))).floor is None
    assert StandardConstants.from_config(config.eval) == StandardConstants()
    d = data.make_draw(ru, tuple(config.data.split), seed=0)
    truth = d.scale.xy_out(d.p[d.rows["loc_test"]])
    got = localizer_standard(d, truth + [0.0, 2.0], 4.0, StandardConstants())
    assert got["ipin_mean"] == pytest.approx(2.0) and got["floor_hit_rate"] == 1.0

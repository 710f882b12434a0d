"""The per-scan terms shared across APs (`jaxfp.data.synthetic.scan_terms`) and the cross-RU
predictability they give ComGAN's room (`jaxfp.methods.comgan.data.cross_ru_predictability`)."""

import dataclasses

import numpy as np
import pytest

from jaxfp.data import synthetic
from jaxfp.methods.comgan.data import cross_ru_predictability, synthetic_set

from ..conftest import REPO

# UJI month 1's six RUs: 0.27 (measured with the same function); the room is tuned to it.
UJI_MONTH1 = 0.27
BAND = (0.22, 0.32)


def world_with(aps, **params):
    base = synthetic.make_world(synthetic.WorldParams(n_aps=len(aps), **params), seed=0)
    return dataclasses.replace(base, ap_xy=np.asarray(aps, np.float64))


def test_body_loss_of_opposite_aps_sums_to_the_whole_loss_and_one_bearing_shares_it():
    # APs east, west and east again of the position: the body takes 10 (1 - cos(θ - φ)) / 2 from
    # each, so east + west = 10 dB whatever the heading, and the two east APs lose the same.
    world = world_with([[6.0, 2.0], [0.0, 2.0], [9.0, 2.0]], body_loss_db=10.0)
    terms = synthetic.scan_terms(world, np.tile([[3.0, 2.0]], (200, 1)), np.random.default_rng(0))
    np.testing.assert_allclose(terms[:, 0] + terms[:, 1], -10.0, atol=1e-9)
    np.testing.assert_allclose(terms[:, 0], terms[:, 2])
    assert terms.max() <= 0.0 and terms.min() >= -10.0 and terms[:, 0].std() > 2.0


def test_occupancy_term_shifts_every_ap_alike_and_off_draws_nothing():
    world = world_with([[1.0, 1.0], [5.0, 4.0]], scan_common_db=3.0)
    terms = synthetic.scan_terms(world, np.zeros((500, 2)), np.random.default_rng(1))
    np.testing.assert_allclose(terms[:, 0], terms[:, 1])
    assert 2.5 < terms[:, 0].std() < 3.5
    rng = np.random.default_rng(2)
    off = synthetic.scan_terms(world_with([[1.0, 1.0]]), np.zeros((5, 2)), rng)
    np.testing.assert_array_equal(off, 0.0)
    assert rng.random() == np.random.default_rng(2).random()  # the stream is untouched


def test_predictability_by_hand():
    # Two RPs, four scans each, the same deviations around different means: RU0 (1, -1, 1, -1),
    # RU1 (1, -1, 0, 0). corr = 2 / sqrt(4 * 2) = 1/sqrt 2, so each RU's R² = corr² = 0.5.
    dev = np.array([[1.0, 1.0], [-1.0, -1.0], [1.0, 0.0], [-1.0, 0.0]])
    rss = np.concatenate([dev + [-50.0, -60.0], dev + [-70.0, -40.0]])
    rp = np.repeat([3, 7], 4)
    p = cross_ru_predictability(rss, rp)
    np.testing.assert_allclose(p.per_ru, [0.5, 0.5], atol=1e-12)
    assert p.mean_r2 == pytest.approx(0.5) and p.max_abs_corr == pytest.approx(2**-0.5)
    # RU1 (1, -1, 1, -1)·-1: the other RU predicts it fully, whatever the sign.
    flipped = np.concatenate([dev[:, :1], -dev[:, :1]], 1)
    full = cross_ru_predictability(np.concatenate([flipped, flipped]), rp)
    assert full.mean_r2 == pytest.approx(1.0)
    with pytest.raises(ValueError, match="rp"):
        cross_ru_predictability(rss, rp[:-1])


def test_comgan_room_matches_uji_month1_and_the_independent_room_shows_none():
    from jaxfp.config import load_config

    spec = str(REPO / "experiments" / "comgan" / "completion.py")
    room = synthetic_set(load_config(spec).synthetic, 0)
    p = cross_ru_predictability(room.rss, room.rp)
    assert BAND[0] < p.mean_r2 < BAND[1], p
    independent = synthetic_set(load_config(spec + ":independent").synthetic, 0)
    assert cross_ru_predictability(independent.rss, independent.rp).mean_r2 < 0.01

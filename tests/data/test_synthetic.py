import numpy as np

from jaxfp.data import synthetic


def test_path_loss_falls_with_distance_and_floors():
    params = synthetic.WorldParams(n_aps=1, shadowing_db=0.0, n_floors=2)
    world = synthetic.make_world(params, seed=0)
    ap = world.ap_xy[0]
    xy = ap + np.array([[1.0, 0.0], [4.0, 0.0], [16.0, 0.0]])
    floor = np.full(3, world.ap_floor[0])
    rss = synthetic.mean_rss(world, xy, floor)[:, 0]
    # 10 * alpha * log10(4) dB per factor 4 of distance.
    np.testing.assert_allclose(
        np.diff(rss), -10 * params.path_loss_exponent * np.log10(4), atol=1e-9
    )
    other = synthetic.mean_rss(world, xy[:1], 1 - floor[:1])[0, 0]
    np.testing.assert_allclose(rss[0] - other, params.floor_attenuation_db)


def test_survey_is_deterministic_and_respects_sensitivity():
    world = synthetic.make_world(synthetic.WorldParams(), seed=1)
    a = synthetic.survey(world, 2, seed=5)
    b = synthetic.survey(world, 2, seed=5)
    np.testing.assert_array_equal(a.detected, b.detected)
    np.testing.assert_array_equal(np.nan_to_num(a.rss), np.nan_to_num(b.rss))
    assert np.nanmin(a.rss) >= world.params.sensitivity_dbm
    assert a.n == 2 * len(world.grid()[0])


def test_churn_follows_the_rates():
    params = synthetic.WorldParams(n_aps=400, install_rate=0.06, removal_rate=0.04)
    world = synthetic.make_world(params, seed=0)
    later = synthetic.evolve(world, seed=1)
    removed = int((world.ap_active & ~later.ap_active[: len(world.ap_active)]).sum())
    added = len(later.ap_xy) - len(world.ap_xy)
    assert 5 <= removed <= 30 and 10 <= added <= 40 and later.period == 1
    scan = synthetic.survey(later, 1, seed=2)
    assert not scan.detected[:, ~later.ap_active].any()
    assert scan.n_aps == len(later.ap_xy)


def test_walk_stays_inside_and_moves_at_speed():
    world = synthetic.make_world(synthetic.WorldParams(width_m=10, height_m=5), seed=0)
    path = synthetic.walk(world, 200, seed=3, speed_mps=1.0)
    assert path.shape == (200, 2)
    assert (path >= 0).all() and (path[:, 0] <= 10).all() and (path[:, 1] <= 5).all()
    assert np.linalg.norm(np.diff(path, axis=0), axis=1).max() <= 1.0 + 1e-9

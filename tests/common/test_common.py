"""The shared layer: atomic files, padded chunks, neighbours, the RSS scale, geometry."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxfp.common import atomic_files, chunks, geometry, neighbours, rss_scale


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError), atomic_files.atomic_path(target) as tmp:
        with open(tmp, "w") as f:
            f.write("half")
        raise RuntimeError("killed")
    assert not target.exists() and not list(tmp_path.iterdir())
    atomic_files.write_json(target, {"x": np.float32(1.5), "t": (1, 2)})
    assert target.read_text() == '{\n  "x": 1.5,\n  "t": [\n    1,\n    2\n  ]\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_map_chunks_pads_the_last_chunk_and_strips_it():
    calls = []

    def fn(block, start):
        calls.append((block.shape, start))
        return {"double": 2 * block, "stacked": np.stack([block, block])}

    rows = np.arange(10.0).reshape(5, 2)
    out = chunks.map_chunks(fn, rows, 2)
    assert calls == [((2, 2), 0), ((2, 2), 2), ((2, 2), 4)]  # one shape: one compilation
    np.testing.assert_array_equal(out["double"], 2 * rows)
    stacked = chunks.map_chunks(lambda b, _: np.stack([b, b]), rows, 2, axis=1)
    np.testing.assert_array_equal(stacked, np.stack([rows, rows]))


def test_idw_average_matches_a_direct_computation():
    rng = np.random.default_rng(0)
    refs, values = rng.normal(size=(20, 4)), rng.normal(size=(20, 3))
    queries = rng.normal(size=(7, 4))
    got = neighbours.idw_average(queries, refs, values, k=4, chunk=3)  # chunks of 3 queries
    d = np.linalg.norm(queries[:, None] - refs[None], axis=-1)
    nearest = np.argsort(d, 1)[:, :4]
    w = 1.0 / (np.take_along_axis(d, nearest, 1) + 1e-6)
    expected = np.einsum("qk,qkc->qc", w, values[nearest]) / w.sum(1, keepdims=True)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    assert neighbours.idw_average(queries[:0], refs, values, k=4).shape == (0, 3)
    with pytest.raises(ValueError, match="metric: expected one of"):
        neighbours.pairwise_distance(jnp.ones((1, 2)), jnp.ones((1, 2)), "hamming")


def test_rss_scale_round_trip_and_not_detected():
    rss = np.array([[-120.0, -60.0, np.nan, 0.0]])
    unit = rss_scale.to_unit(rss)
    np.testing.assert_allclose(unit, [[0.0, 0.5, 0.0, 1.0]])
    back = rss_scale.from_unit(unit, floor_dbm=-110.0)
    np.testing.assert_allclose(back, [[np.nan, -60.0, np.nan, 0.0]])
    np.testing.assert_allclose(
        rss_scale.to_unit(rss, np.array([[1, 0, 0, 1]], bool)), [[0, 0, 0, 1]]
    )


def test_rotation_about_a_site_and_grid_cells():
    bs = (100.0, -100.0, 30.0)
    xy = jnp.array([[110.0, -100.0], [100.0, -90.0]])
    rotated = geometry.rotate_xy(xy, jnp.pi / 2, bs)
    np.testing.assert_allclose(rotated, [[100.0, -90.0], [90.0, -100.0]], atol=1e-4)
    frame = geometry.SiteFrame((100.0, -100.0), 10.0, (0.0,))
    np.testing.assert_allclose(frame.to_metres(frame.normalise(xy)), xy, atol=1e-5)
    np.testing.assert_allclose(frame.normalise(xy), [[1.0, 0.0], [0.0, 1.0]], atol=1e-6)
    cells = geometry.Cells.covering(np.array([[0.0, 0.0], [25.0, 9.0]]), 10.0)
    assert cells.shape == (3, 1) and cells.count == 3
    np.testing.assert_array_equal(
        cells.index(jnp.array([[0.0, 0.0], [24.0, 5.0], [99.0, 99.0]])), [0, 2, 2]
    )

import jax
import numpy as np
import pytest

from jaxfp import data
from jaxfp.data import synthetic
from jaxfp.methods.baselines import knn


def brute_force(refs, queries, metric):
    if metric == "euclidean":
        return np.linalg.norm(queries[:, None] - refs[None], axis=-1)
    if metric == "manhattan":
        return np.abs(queries[:, None] - refs[None]).sum(-1)
    rn = refs / np.linalg.norm(refs, axis=-1, keepdims=True)
    qn = queries / np.linalg.norm(queries, axis=-1, keepdims=True)
    return 1 - qn @ rn.T


@pytest.fixture(scope="module")
def world_sets():
    world = synthetic.make_world(synthetic.WorldParams(n_floors=2, n_aps=25), seed=0)
    reference = synthetic.survey(world, 2, seed=1)
    xy, floor = world.grid()
    pick = np.random.default_rng(0).choice(len(xy), 37, replace=False)
    queries = synthetic.measure(world, xy[pick] + 0.3, floor[pick], seed=2, device=1)
    return reference, queries


@pytest.mark.parametrize("metric", knn.METRICS)
def test_matches_numpy_brute_force(world_sets, metric):
    reference, queries = world_sets
    index = knn.build_index(reference, "positive")
    out = knn.predict(index, queries, k=4, weighted=True, metric=metric, chunk=16)
    q = data.represent(queries.rss, queries.detected, "positive", index.min_rss)
    d = brute_force(np.asarray(index.refs, np.float64), q.astype(np.float64), metric)
    nbr = np.argsort(d, axis=1, kind="stable")[:, :4]
    w = 1.0 / (np.take_along_axis(d, nbr, 1) + 1e-6)
    w /= w.sum(1, keepdims=True)
    expected = np.einsum("qk,qkc->qc", w, reference.xy[nbr])
    np.testing.assert_allclose(out["xy"], expected, atol=1e-3)
    np.testing.assert_allclose(
        np.sort(out["distances"], 1), np.take_along_axis(d, nbr, 1), rtol=1e-3, atol=1e-2
    )
    votes = np.array(
        [
            np.bincount(reference.floor[n], weights=ww, minlength=2).argmax()
            for n, ww in zip(nbr, w, strict=True)
        ]
    )
    np.testing.assert_array_equal(out["floor"], votes)


def test_chunking_jit_and_compile_once(world_sets):
    reference, queries = world_sets
    index = knn.build_index(reference, "exponential")
    before = knn.query_chunk._cache_size()
    a = knn.predict(index, queries, k=3, chunk=8)  # 5 chunks, the last one padded
    assert knn.query_chunk._cache_size() == before + 1
    b = knn.predict(index, queries, k=3, chunk=1000)
    np.testing.assert_allclose(a["xy"], b["xy"], atol=1e-4)
    with jax.disable_jit():
        c = knn.predict(index, queries.subset(np.arange(8)), k=3, chunk=8)
    np.testing.assert_allclose(a["xy"][:8], c["xy"], atol=1e-4)
    np.testing.assert_array_equal(a["floor"][:8], c["floor"])


def test_unweighted_k1_returns_a_reference_position(world_sets):
    reference, queries = world_sets
    out = knn.predict(knn.build_index(reference, "dbm"), queries, k=1, weighted=False)
    assert all((np.abs(reference.xy - p).sum(1) < 1e-6).any() for p in out["xy"])


def test_large_coordinates_keep_float64_precision(world_sets):
    reference, queries = world_sets
    shift = np.array([-7600.0, 4864900.0])
    moved_ref = reference.subset(np.arange(reference.n))
    object.__setattr__(moved_ref, "xy", reference.xy + shift)
    plain = knn.predict(knn.build_index(reference, "positive"), queries, k=3)
    moved = knn.predict(knn.build_index(moved_ref, "positive"), queries, k=3)
    np.testing.assert_allclose(moved["xy"] - shift, plain["xy"], atol=1e-3)


def test_bad_arguments(world_sets):
    reference, queries = world_sets
    index = knn.build_index(reference, "positive")
    with pytest.raises(ValueError, match="k: expected 1.."):
        knn.predict(index, queries, k=0)
    with pytest.raises(ValueError, match="metric: expected one of"):
        knn.predict(index, queries, k=1, metric="hamming")
    with pytest.raises(ValueError, match="expected 25 AP columns"):
        knn.predict(index, queries.select_aps(queries.ap_ids[:5].tolist()), k=1)

"""GUFU's update pieces on constructed cases: the rewrite's detection floor, eq. 10 as alignment,
the embedding readout, the old-new link count, the records' change against the drift, forgotten
APs against the measured map, the mini-batched update module and the GNN's retraining steps."""

import jax
import numpy as np
import pytest

from jaxfp.common.rss_scale import to_unit
from jaxfp.config import load_config
from jaxfp.data.types import FingerprintSet, rp_ids_from_positions
from jaxfp.methods.gufu import scoring
from jaxfp.methods.gufu.losses import UpdateModuleStatic, update_module_loss
from jaxfp.methods.gufu.nets import MLP
from jaxfp.methods.gufu.site_graph import links_of_points
from jaxfp.methods.gufu.study import Gufu
from jaxfp.methods.gufu.update_module import link_diagnostics, ridge_readout
from jaxfp.train.optimise import StepLog

from ...conftest import REPO
from .test_gufu import small_site

SPEC = str(REPO / "experiments" / "gufu" / "longterm.py:test")
IDS = np.array(["a", "b", "c"])


def raw_model(**settings) -> Gufu:
    """Without the feature extractor a code is the normalised RSS and decoding is the identity."""
    config = load_config(SPEC)
    config.gufu.update(dict(feature_extractor=False, **settings))
    rss = np.array([[-60.0, -105.0, -116.0], [-70.0, np.nan, -50.0]], np.float32)
    return Gufu(config.gufu, IDS, rss, np.zeros((2, 2), np.float32), jax.random.key(0))


def test_a_value_pushed_below_the_floor_ends_the_detection():
    target = np.array([[-62.0, -115.0, -117.0], [-70.0, -60.0, -50.0]], np.float32)
    ends = raw_model(rewrite="replace")._rewritten(to_unit(target), None)
    # -105 -> -115 crosses the -110 floor: ended; -116 -> -117 was below it already: kept.
    np.testing.assert_allclose(ends[0], [-62.0, np.nan, -117.0], atol=1e-4)
    assert np.isnan(ends[1, 1])  # nothing starts here
    keeps = raw_model(rewrite="replace", below_floor="keeps")._rewritten(to_unit(target), None)
    np.testing.assert_allclose(keeps[0], [-62.0, -105.0, -116.0], atol=1e-4)
    residual = raw_model(rewrite="residual")
    change = np.zeros((2, 3), np.float32)
    change[0, 1] = -10.0 / 120.0
    out = residual._rewritten(change, np.zeros_like(change))
    assert np.isnan(out[0, 1]) and np.isclose(out[0, 2], -116.0, atol=1e-4)


def test_alignment_fits_the_encoder_to_the_updated_codes_and_the_decoder_back():
    config = load_config(SPEC)
    rss, xy = small_site()
    model = Gufu(config.gufu, IDS, rss, xy, jax.random.key(0))
    model.train_autoencoder(200)
    # Updated codes the records could have: a fixed map of their RSS, unrelated to the encoder.
    mixing = np.random.default_rng(0).normal(0, 1.0, (3, config.gufu.code))
    codes = np.tanh(to_unit(rss) @ mixing).astype(np.float32)

    def gaps():
        encode = np.abs(model.encode(rss) - codes).mean()
        decode = np.nanmean(np.abs(model.decode(codes) - rss))
        return encode, decode

    before = gaps()
    model.train_autoencoder(300, align_to=codes)
    after = gaps()
    assert after[0] < 0.5 * before[0] and after[1] < before[1]


def test_the_readout_recovers_an_affine_map():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(200, 6))
    weights, bias = rng.normal(size=(6, 4)), rng.normal(size=4)
    readout = ridge_readout(z, z @ weights + bias, ridge=1e-9)
    np.testing.assert_allclose(readout(z[:5]), z[:5] @ weights + bias, atol=1e-4)


def test_link_diagnostics_count_old_new_pairs_on_a_hand_graph():
    # Records 0-2, new samples 3-5: pairs (0, 3), (1, 3), (2, 4) cross; (0, 1) and (3, 5) do not.
    virtual = np.array([[0, 1], [0, 3], [1, 3], [2, 4], [3, 5]])
    out = link_diagnostics(virtual, num_old=3, num_new=3)
    assert out["old_new_pairs"] == 3
    np.testing.assert_allclose(out["new_samples_linked"], 2 / 3)
    np.testing.assert_allclose(out["records_linked"], 1.0)


def test_drift_capture_compares_the_records_change_with_the_measured_drift():
    rss, xy = small_site()
    measured = FingerprintSet(
        rss=rss + 4.0,
        detected=np.isfinite(rss),
        ap_ids=IDS,
        xy=xy,
        rp_id=rp_ids_from_positions(xy),
    )
    before = (rss, IDS)
    follow = scoring.drift_capture(before, (rss + 2.0, IDS), xy, measured)
    np.testing.assert_allclose(
        [follow["record_change_db"], follow["measured_drift_db"], follow["drift_alignment"]],
        [2.0, 4.0, 1.0],
        rtol=1e-5,
    )
    against = scoring.drift_capture(before, (rss - 1.0, IDS), xy, measured)
    np.testing.assert_allclose(against["drift_alignment"], -1.0, rtol=1e-5)
    still = scoring.drift_capture(before, before, xy, measured)
    assert still["record_change_db"] == 0.0 and np.isnan(still["drift_alignment"])


def test_forgetting_is_checked_ap_by_ap_against_the_measured_map():
    rss, xy = small_site()
    heard = rss.copy()
    heard[:, 1] = np.nan  # AP b departed: the measurement hears it nowhere
    measured = FingerprintSet(
        rss=heard, detected=np.isfinite(heard), ap_ids=IDS, xy=xy, rp_id=rp_ids_from_positions(xy)
    )
    # Removing b and c: b departed (forgotten), c is still heard (removed wrongly).
    out = scoring.forgetting_check(IDS, np.array(["a"]), measured)
    assert out == {"aps_removed_still_heard": 1, "aps_removed_departed": 1, "aps_kept_departed": 0}
    # Removing nothing keeps the departed b.
    out = scoring.forgetting_check(IDS, IDS, measured)
    assert out == {"aps_removed_still_heard": 0, "aps_removed_departed": 0, "aps_kept_departed": 1}


def test_aligning_to_its_own_codes_again_and_again_keeps_them_apart():
    config = load_config(SPEC)
    rss, xy = small_site()
    model = Gufu(config.gufu, IDS, rss, xy, jax.random.key(0))
    model.train_autoencoder(200)
    spread = model.encode(rss).std(0).mean()
    for _ in range(5):  # what `autoencoder_retrain="align"` does when the records stay put
        model.train_autoencoder(50, align_to=model.encode(rss))
    # Through input dropout the codes shrank towards their mean every round (a collapse).
    assert model.encode(rss).std(0).mean() > 0.9 * spread


def test_links_reach_every_record_at_the_linked_records_point():
    config = load_config(SPEC)
    rss, xy = small_site()  # 4 records at each of 3 points
    model = Gufu(config.gufu, IDS, rss, xy, jax.random.key(0))
    links = np.array([[0, 12], [5, 13]])  # record 0 (point of records 0-3), record 5 (4-7)
    spread = links_of_points(links, model.points)
    assert sorted(map(tuple, spread)) == [(r, 12) for r in range(4)] + [
        (r, 13) for r in range(4, 8)
    ]


def test_the_minibatched_update_module_loss_estimates_the_full_one():
    rng = np.random.default_rng(0)
    s, new, pairs, padded = 40, 6, 9, 16
    mlp1, mlp2 = MLP(hidden=(8,), out=2), MLP(hidden=(8,), out=4)
    data = {
        "z": rng.normal(size=(s + new, 5)).astype(np.float32),
        "loc": rng.normal(size=(s, 2)).astype(np.float32),
        "codes_old": rng.normal(size=(s, 4)).astype(np.float32),
        "codes_new": rng.normal(size=(new, 4)).astype(np.float32),
        # real pairs first, then zero-weight padding that points at row 0
        "old_end": np.pad(rng.integers(0, s, pairs), (0, padded - pairs)).astype(np.int32),
        "new_end": np.pad(rng.integers(0, new, pairs), (0, padded - pairs)).astype(np.int32),
        "cross_weight": np.pad(np.ones(pairs, np.float32), (0, padded - pairs)),
        "num_pairs": np.int32(pairs),
    }
    k1, k2 = jax.random.split(jax.random.key(1))
    params = {"mlp1": mlp1.init(k1, data["z"][:1]), "mlp2": mlp2.init(k2, data["loc"][:1])}
    static = UpdateModuleStatic(mlp1, mlp2, s, True, 0.5, 0)
    full = update_module_loss(static, params, data, jax.random.key(2))
    sampled = static._replace(batch=8)
    loss = jax.jit(lambda key: update_module_loss(sampled, params, data, key))
    draws = np.array([loss(k) for k in jax.random.split(jax.random.key(3), 2000)])
    # Each draw differs (a real subsample); their mean is the full loss: the padding never counts.
    assert draws.std() > 0.05 * float(full)
    np.testing.assert_allclose(draws.mean(), float(full), rtol=0.03)


class CountingLog(StepLog):
    """Which fits ran and how many steps each."""

    def __init__(self) -> None:
        super().__init__()
        self.fits: list[tuple[str, int]] = []

    def record(self, name: str, losses: np.ndarray) -> None:
        super().record(name, losses)
        self.fits.append((name, len(losses)))


@pytest.mark.parametrize("gnn_steps, expected", [(-1, 4), (7, 7), (0, 0)])
def test_the_gnn_retrains_its_own_step_count_an_update(gnn_steps, expected):
    config = load_config(SPEC)
    config.gufu.update(dict(ae_steps=5, gnn_steps=3, update_steps=3, retrain_steps=4))
    config.gufu.retrain_gnn_steps = gnn_steps
    rss, xy = small_site()
    model = Gufu(config.gufu, IDS, rss, xy, jax.random.key(0), log=CountingLog())
    model.offline()
    before = jax.tree.map(np.asarray, model.gnn_params)
    model.log.fits.clear()
    model.update(rss + 1.0, IDS)
    fits = dict(model.log.fits)
    assert fits["autoencoder"] == 4  # eq. 10 keeps retrain_steps
    assert fits.get("gnn", 0) == expected
    unchanged = jax.tree.map(np.array_equal, before, jax.tree.map(np.asarray, model.gnn_params))
    assert all(jax.tree.leaves(unchanged)) == (expected == 0)


def test_pca_features_give_back_what_their_components_span():
    from jaxfp.methods.gufu.autoencoder import FeatureExtractor, PcaExtractor

    config = load_config(str(REPO / "experiments" / "gufu" / "longterm.py:test"))
    config.gufu.update(dict(feature_method="pca", code=2))
    pca = FeatureExtractor.from_settings(config.gufu)
    assert isinstance(pca, PcaExtractor)
    # Two directions of variation in normalised RSS over 3 APs, c never heard: rank 2 exactly
    t = np.linspace(0.0, 1.0, 6)
    rss = np.column_stack([-50 - 20 * t, -60 + 10 * t**2, np.full(6, np.nan)]).astype(np.float32)
    mse = pca.train(rss, np.array(["a", "b", "c"]), 0, None, None)
    assert mse == pytest.approx(0.0, abs=1e-12)
    codes = pca.encode(rss)
    assert codes.shape == (6, 2)
    np.testing.assert_allclose(pca.decode_normalised(codes), to_unit(rss), atol=1e-6)
    # One component: the decoded rows are the mean plus the first direction only
    pca.code = 1
    pca.train(rss, np.array(["a", "b", "c"]), 0, None, None)
    x = to_unit(rss)
    centred = x - x.mean(0)
    first = np.linalg.svd(centred)[2][0]
    np.testing.assert_allclose(pca.encode(rss)[:, 0], centred @ first, atol=1e-6)
    # More components than the data has directions: the spare codes are zero
    pca.code = 5
    pca.train(rss, np.array(["a", "b", "c"]), 0, None, None)
    np.testing.assert_allclose(pca.encode(rss)[:, 3:], 0.0, atol=1e-12)
    with pytest.raises(ValueError, match="alignment needs a trained encoder"):
        pca.train(rss, np.array(["a", "b", "c"]), 0, None, None, align_to=codes)
    with pytest.raises(ValueError, match="the PCA reads 3"):
        pca.encode(rss[:, :2])


def test_padded_sizes_are_kept_while_counts_fit_them():
    from jaxfp.methods.gufu import budgets

    # Old-new pair counts rise and fall between updates: a budget stays while the count fills
    # more than half of it, so the compiled update-module step is reused
    first = budgets.pairs_budget(11048, 4096)
    assert first == 12288
    assert [budgets.pairs_budget(n, 4096, first) for n in (9361, 8135, 6145)] == [12288] * 3
    assert budgets.pairs_budget(6144, 4096, first) == 8192  # half full: a fresh budget
    assert budgets.pairs_budget(12289, 4096, first) == 16384  # over it
    assert budgets.pairs_budget(5, 64) == 64

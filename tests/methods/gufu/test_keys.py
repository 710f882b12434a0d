"""Every random draw of GUFU comes from a named key: a fit's key depends on its name and stage,
not on which fits ran before it, and each seed draws its own data."""

import jax
import numpy as np

from jaxfp.config import load_config
from jaxfp.methods.gufu import data as gufu_data
from jaxfp.methods.gufu import study
from jaxfp.train.optimise import optimise

from ...conftest import REPO
from .test_gufu import small_site

SPEC = str(REPO / "experiments" / "gufu" / "longterm.py:test")
IDS = np.array(["a", "b", "c"])


def fit_keys(monkeypatch, **settings) -> list[tuple[str, bytes]]:
    """(fit name, key data) of every fit of an offline stage and two updates, in call order."""
    calls = []

    def recording(loss_fn, static, params, data, key, steps, *args, **kwargs):
        calls.append((args[1], np.asarray(jax.random.key_data(key)).tobytes()))
        return optimise(loss_fn, static, params, data, key, steps, *args, **kwargs)

    monkeypatch.setattr(study, "optimise", recording)
    config = load_config(SPEC)
    config.gufu.update(dict(ae_steps=2, gnn_steps=2, update_steps=2, retrain_steps=2, **settings))
    rss, xy = small_site()
    model = study.Gufu(config.gufu, IDS, rss, xy, jax.random.key(0))
    model.offline()
    for shift in (1.0, 2.0):
        model.update(rss + shift, IDS)
    return calls


def test_adding_a_fit_changes_no_other_fits_key(monkeypatch):
    plain = fit_keys(monkeypatch)
    # The residual rewrite adds a batch-free fit to each update; two rounds add a whole pass.
    residual = fit_keys(monkeypatch, rewrite="residual")
    added = [c for c in residual if c[0] == "update_module_without_batch"]
    assert len(added) == 2
    assert [c for c in residual if c not in added] == plain
    # ... which draws the same mini-batches as the fit with the batch.
    with_batch = [c for c in residual if c[0] == "update_module"]
    assert [k for _, k in added] == [k for _, k in with_batch]
    # Two passes (a location input feeds back; settle_m = 0 never stops them early)
    rounds = fit_keys(monkeypatch, update_rounds=2, location_input="own", settle_m=0.0)
    assert [c for c in rounds if c[0] != "update_module"] == [
        c for c in plain if c[0] != "update_module"
    ]
    # Each update's first round keeps its key; the second round's is new.
    first_rounds = [c for c in rounds if c[0] == "update_module"][::2]
    assert first_rounds == [c for c in plain if c[0] == "update_module"]


def test_fits_of_different_names_or_stages_draw_different_keys(monkeypatch):
    calls = fit_keys(monkeypatch)
    names = [name for name, _ in calls]
    assert names == ["autoencoder", "gnn", *["update_module", "autoencoder", "gnn"] * 2]
    assert len({key for _, key in calls}) == len(calls)


def test_each_seed_draws_its_own_synthetic_world():
    config = load_config(SPEC.replace(":test", ":synthetic_test"))
    (db0, periods0), (db1, periods1) = (gufu_data.load_periods(config, s) for s in (0, 1))
    again, periods_again = gufu_data.load_periods(config, 0)
    np.testing.assert_array_equal(again.rss, db0.rss)
    np.testing.assert_array_equal(periods_again[1].batch.xy, periods0[1].batch.xy)
    # The survey grid is the site's; what is measured there, and where the batches are, differ.
    np.testing.assert_array_equal(np.unique(db0.xy, axis=0), np.unique(db1.xy, axis=0))
    assert not np.array_equal(db0.rss, db1.rss, equal_nan=True)
    assert not np.array_equal(periods0[0].batch.xy, periods1[0].batch.xy)
    # Within a seed, weeks draw apart: week 1's and week 2's batch places differ.
    assert not np.array_equal(periods0[0].batch.xy, periods0[1].batch.xy)


def test_each_seed_draws_its_own_records_per_point_on_the_real_months():
    config = load_config(SPEC)  # 3 records per reference point of the shipped month cut
    db0, periods0 = gufu_data.load_periods(config, 0)
    db1, periods1 = gufu_data.load_periods(config, 1)
    counts = np.bincount(db0.rp_id)
    assert counts[counts > 0].max() == config.data.records_per_rp
    assert not np.array_equal(db0.rss, db1.rss, equal_nan=True)
    # The months themselves are the data set's: the same batches for every seed.
    np.testing.assert_array_equal(periods0[0].batch.rss, periods1[0].batch.rss)

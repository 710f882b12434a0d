import jax.numpy as jnp
import numpy as np

from jaxfp.methods.csi import ensemble


def test_weighted_average_by_hand():
    preds = jnp.array([[[0.0, 0.0]], [[10.0, 0.0]]])
    np.testing.assert_allclose(ensemble.weighted_average(preds), [[5.0, 0.0]])
    w = ensemble.inverse_error_weights(jnp.array([1.0, 3.0]))
    np.testing.assert_allclose(ensemble.weighted_average(preds, w), [[2.5, 0.0]])


def test_consensus_drops_the_outlier_and_falls_back_to_all():
    preds = jnp.array(
        [
            [[0.0, 0.0], [0.0, 0.0]],
            [[1.0, 0.0], [50.0, 0.0]],
            [[0.0, 1.0], [100.0, 0.0]],
            [[40.0, 40.0], [150.0, 0.0]],
        ]
    )
    estimate, agreeing = ensemble.consensus(preds, radius_m=2.0)
    np.testing.assert_allclose(estimate[0], [1 / 3, 1 / 3], atol=1e-6)
    assert agreeing.tolist() == [3, 4]  # sample 1: nobody near the median, everybody kept
    np.testing.assert_allclose(estimate[1], [75.0, 0.0])

"""The demo, on DSI1, which the repo ships (data/DSI1.mat): kNN/WkNN variants next to an MLP
regressor trained for four seeds as one vmapped program (TensorBoard and metrics.jsonl in mlp/).

    jaxfp demo --workdir runs/demo
    jaxfp run experiments/demo.py --workdir runs/demo --config.knn.variants.wknn3_positive.k=5
"""

import os

import ml_collections

from jaxfp.config import load_config

HERE = os.path.dirname(os.path.abspath(__file__))


SIZES = ("", "test")  # checked by jaxfp.config.load_config: an unknown size is an error


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.method = "baselines.demo"
    knn = load_config(os.path.join(HERE, "baselines", "knn_uji1.py"))
    knn.data.path = os.path.join(os.path.dirname(HERE), "data", "DSI1.mat")
    knn.variants = ml_collections.ConfigDict(
        {
            "nn1_dbm": dict(k=1, weighted=False, representation="dbm", metric="euclidean"),
            "knn3_positive": dict(
                k=3, weighted=False, representation="positive", metric="euclidean"
            ),
            "wknn3_positive": dict(
                k=3, weighted=True, representation="positive", metric="euclidean"
            ),
            "wknn3_exponential": dict(
                k=3, weighted=True, representation="exponential", metric="euclidean"
            ),
            "wknn3_powed_manhattan": dict(
                k=3, weighted=True, representation="powed", metric="manhattan"
            ),
        }
    )
    knn.eval.success_radius_m = 5.0
    c.knn = knn
    c.mlp = load_config(os.path.join(HERE, "baselines", "mlp_dsi1.py"))
    if arg == "test":
        c.mlp = load_config(os.path.join(HERE, "baselines", "mlp_dsi1.py:test"))
    return c

"""The demo: kNN and WkNN variants on DSI1, which the repo ships (data/DSI1.mat).

jaxfp demo --workdir runs/demo
jaxfp run experiments/demo.py --workdir runs/demo --config.variants.wknn3_positive.k=5
"""

import os

import ml_collections

from jaxfp.config import split_data
from jaxfp.methods.knn_run import variant_config as variant

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.method = "knn"
    c.seed = 0
    c.query_chunk = 128
    c.data = split_data(os.path.join(REPO, "data", "DSI1.mat"))
    c.variants = ml_collections.ConfigDict(
        {
            "nn1_dbm": variant(1, False, "dbm"),
            "knn3_positive": variant(3, False, "positive"),
            "wknn3_positive": variant(3, True, "positive"),
            "wknn3_exponential": variant(3, True, "exponential"),
            "wknn3_powed_manhattan": variant(3, True, "powed", "manhattan"),
        }
    )
    c.eval = ml_collections.ConfigDict(dict(success_radius_m=5.0))
    return c

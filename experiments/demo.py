"""The demo, on DSI1, which the repo ships (data/DSI1.mat): kNN/WkNN variants next to an MLP
regressor trained for four seeds as one vmapped program (TensorBoard and metrics.jsonl in mlp/).

    jaxfp demo --workdir runs/demo
    jaxfp run experiments/demo.py --workdir runs/demo --config.knn.variants.wknn3_positive.k=5
    jaxfp run experiments/demo.py --workdir runs/demo --config.eval.floor_penalty_m=4
"""

import ml_collections

from jaxfp.config import repo_path, sibling
from jaxfp.eval.iso18305 import eval_section

SIZES = ("", "test")  # checked by jaxfp.config.load_config: an unknown size is an error


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.method = "baselines.demo"
    # The ISO/IEC 18305 and IPIN constants of the standard fields; knn.eval and mlp.eval refer to
    # them, so one override sets both parts.
    c.eval = eval_section()
    knn = sibling(__file__, "baselines/knn_uji1.py").get_config()
    knn.data.path = repo_path(__file__, "data", "DSI1.mat")
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
    c.mlp = sibling(__file__, "baselines/mlp_dsi1.py").get_config()
    if arg == "test":
        c.mlp = sibling(__file__, "baselines/mlp_dsi1.py").get_config("test")
    for part in (c.knn, c.mlp):
        for key in c.eval:
            part.eval[key] = c.eval.get_ref(key)
    return c

"""WkNN on UJIIndoorLoc (UJI1 of the Torres-Sospedra collection: 19,861 references, 1,111 queries).

Download UJI1.mat from Zenodo (doi 10.5281/zenodo.3751042) or UJIIndoorLoc's CSV pair from UCI; then
    jaxfp run experiments/baselines/knn_uji1.py --workdir runs/uji1 --config.data.path=/path/to/UJI1.mat
(a folder or zip with trainingData.csv / validationData.csv works the same).
Test size (the shipped 300/60-row cut): experiments/baselines/knn_uji1.py:test
"""

import ml_collections

from jaxfp.config import repo_path, split_data
from jaxfp.eval.iso18305 import eval_section
from jaxfp.methods.baselines.knn_protocols import variant_config as variant

SIZES = ("", "test")  # checked by jaxfp.config.load_config: an unknown size is an error


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.method = "baselines.knn"
    c.seed = 0
    c.query_chunk = 128
    c.data = split_data(repo_path(__file__, "data", "UJI1.mat"))
    c.variants = ml_collections.ConfigDict(
        {
            "nn1_positive": variant(1, False, "positive"),
            "wknn3_positive": variant(3, True, "positive"),
            "wknn5_positive": variant(5, True, "positive"),
            "wknn3_exponential": variant(3, True, "exponential"),
        }
    )
    # The ISO/IEC 18305 and IPIN constants of the standard fields (jaxfp.eval.iso18305)
    c.eval = eval_section(success_radius_m=10.0)
    if arg == "test":
        c.data.path = repo_path(__file__, "tests", "fixtures", "ujiindoorloc_mini")
        c.query_chunk = 16
    return c

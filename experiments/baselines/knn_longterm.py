"""WkNN month by month on the UJI long-term library set: month-1 database vs each month's own.

    jaxfp run experiments/baselines/knn_longterm.py --workdir runs/longterm \
        --config.data.path=/path/to/uji-lib-longterm-months01-15.zip
Test size (the shipped 3-month cut): experiments/baselines/knn_longterm.py:test
"""

import ml_collections

from jaxfp.config import repo_path
from jaxfp.eval.iso18305 import eval_section
from jaxfp.methods.baselines.knn_protocols import variant_config as variant

SIZES = ("", "test")  # checked by jaxfp.config.load_config: an unknown size is an error


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.method = "baselines.knn"
    c.seed = 0
    c.query_chunk = 128
    c.data = ml_collections.ConfigDict(
        dict(
            protocol="longterm",
            path=repo_path(__file__, "data", "uji-lib-longterm-months01-15.zip"),
            months=(),  # () = every month in the set
            reference_month=1,
        )
    )
    c.variants = ml_collections.ConfigDict({"wknn3_positive": variant(3, True, "positive")})
    # The ISO/IEC 18305 and IPIN constants of the standard fields (jaxfp.eval.iso18305)
    c.eval = eval_section(success_radius_m=3.0)
    if arg == "test":
        c.data.path = repo_path(__file__, "tests", "fixtures", "longterm_mini.zip")
        c.query_chunk = 32
    return c

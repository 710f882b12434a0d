"""GUFU month by month on the UJI long-term library set: GUFU, its ablations and two baselines.

    jaxfp run experiments/gufu_longterm.py --workdir runs/gufu \
        --config.data.path=/path/to/uji-lib-longterm-months01-15.zip
Small size (months 2-4, 40 records per reference point, 2 seeds): experiments/gufu_longterm.py:small
Test size (the shipped 3-month cut): experiments/gufu_longterm.py:test
"""

import os

import ml_collections

from jaxfp.methods.gufu import ABLATIONS, BASELINES

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.method = "gufu"
    c.seed = 0
    c.seeds = (0, 1, 2)
    c.variants = (*ABLATIONS, *BASELINES)
    c.data = ml_collections.ConfigDict(
        dict(
            path=os.path.join(REPO, "data", "uji-lib-longterm-months01-15.zip"),
            months=(),  # () = every month after the reference month
            reference_month=1,
            records_per_rp=0,  # 0 = every training record of the reference month
            subsample_seed=0,
        )
    )
    c.gufu = ml_collections.ConfigDict(
        dict(
            code=32,
            ae_dropout=0.5,
            embedding=32,
            gnn_layers=2,
            gnn_dropout=0.1,
            hidden=64,
            learning_rate=3e-3,
            ae_steps=300,
            gnn_steps=100,
            update_steps=300,
            retrain_steps=50,
            negatives=1,
            consistency_weight=0.5,
            virtual_threshold=0.95,
            max_virtual_per_node=10,
            detect_floor_dbm=-110.0,
            edge_floor_dbm=-100.0,
            budget_multiple=4096,
            feature_extractor=True,
            virtual_edges=True,
            edge_prediction=True,
        )
    )
    c.eval = ml_collections.ConfigDict(
        dict(missing_dbm=-100.0, average_radius_m=2.0, average_blend=0.5)
    )
    if arg == "small":
        c.seeds = (0, 1)
        c.data.months = (2, 3, 4)
        c.data.records_per_rp = 40
    if arg == "test":
        c.seeds = (0, 1)
        c.data.path = os.path.join(REPO, "tests", "fixtures", "longterm_mini.zip")
        c.data.records_per_rp = 3
        c.gufu.update(
            dict(ae_steps=3, gnn_steps=2, update_steps=3, retrain_steps=2, budget_multiple=64)
        )
    return c

"""MLP x, y regressor on DSI1 (shipped), several seeds trained as one program.

    jaxfp run experiments/baselines/mlp_dsi1.py --workdir runs/mlp_dsi1
    jaxfp run experiments/baselines/mlp_dsi1.py --workdir runs/mlp_dsi1 --config.seeds="(0, 1, 2, 3, 4, 5, 6, 7)"
Rerunning the same command in the same workdir resumes after the last finished call.
Test size: experiments/baselines/mlp_dsi1.py:test
"""

import ml_collections

from jaxfp.config import repo_path, split_data
from jaxfp.eval.iso18305 import eval_section

SIZES = ("", "test")  # checked by jaxfp.config.load_config: an unknown size is an error


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.method = "baselines.mlp"
    c.seed = 0
    c.seeds = (0, 1, 2, 3)
    c.representation = "gufu"
    c.data = split_data(repo_path(__file__, "data", "DSI1.mat"))
    c.model = ml_collections.ConfigDict(dict(hidden=(256, 256), dropout=0.1))
    c.train = ml_collections.ConfigDict(
        dict(
            batch_size=64,
            num_epochs=200,
            epochs_per_call=20,
            learning_rate=1e-3,
            weight_decay=1e-4,
            max_to_keep=2,
        )
    )
    # The ISO/IEC 18305 and IPIN constants of the standard fields (scoring only: the training's
    # checkpoints do not depend on `eval`)
    c.eval = eval_section()
    if arg == "test":
        c.seeds = (0, 1)
        c.model.hidden = (32,)
        c.train.num_epochs = 4
        c.train.epochs_per_call = 2
    return c

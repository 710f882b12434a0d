"""iToLoc over months: trained on month 1 of the UJI long-term library set, then updated month by
month by co-training on that month's unlabelled test scans, and scored on them.

    jaxfp run experiments/itoloc/drift.py --workdir runs/itoloc_drift \\
        --config.data.path=/path/to/uji-lib-longterm-months01-15.zip
Test size: experiments/itoloc/drift.py:test (the shipped fixture).
"""

import os

import ml_collections

from jaxfp.config import ConfigError, config_module

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
VARIANTS = ("", "test")


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    if arg not in VARIANTS:
        raise ConfigError(f"{__file__}: config variant {arg!r}; expected one of {VARIANTS}")
    c = config_module(os.path.join(HERE, "devices.py")).base_config("itoloc.drift")
    c.domain_keys = ("month", "set_kind", "set_number")  # one device: domains are collections
    c.run_variants = ("itoloc",)
    c.run_update = True
    c.data = ml_collections.ConfigDict(
        dict(
            path=os.path.join(REPO, "data", "uji-lib-longterm-months01-15.zip"),
            format="auto",
            train_parts=("01/trn*",),
            month_parts=("{month:02d}/tst*",),
            months=tuple(range(2, 16)),
            floor_height_m=4.0,
        )
    )
    # §IV / §V-A: σ0 = 0.98 and σ_os = 0.05 (office and classroom); the pool grows as 60 · 2^t.
    c.cotrain = ml_collections.ConfigDict(
        dict(
            rounds=6,
            pool_base=60,
            sigma0=0.98,
            sigma_step=0.05,
            dropout_passes=9,  # K; a label is unstable when more than K/3 passes differ
            smear_every=3,
            smear_std=0.1,  # eq. 12's std (the paper gives none)
        )
    )
    c.cotrain_train = ml_collections.ConfigDict(
        dict(
            num_steps=100,
            batch_size=32,
            learning_rate=0.01,  # §V-A: 0.01 in the model update
            momentum=0.9,
            weight_decay=1e-4,
            plateau_steps=50,
            plateau_patience=5,
            log_every=50,
            checkpoint_every=100,
            max_to_keep=1,
        )
    )
    if arg == "test":
        c.seeds = (0, 1)
        c.image.n_aps = 6
        c.data.path = os.path.join(REPO, "tests", "fixtures", "longterm_mini.zip")
        c.data.months = (2, 3)
        c.train.update(
            dict(num_steps=4, log_every=2, checkpoint_every=2, batch_size=8, plateau_steps=2)
        )
        c.cotrain.update(dict(rounds=3, pool_base=4, sigma0=0.0, dropout_passes=3, smear_every=1))
        c.cotrain_train.update(
            dict(num_steps=2, log_every=1, checkpoint_every=1, batch_size=4, plateau_steps=1)
        )
    return c

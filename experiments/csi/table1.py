"""CSI positioning, Table I: backbones trained on the 10% labelled receivers (supervised baseline).

Paper scale (the full etoile set, ResNet family + MobileNetV2 + ShuffleNetV2):
    python -m datagen generate --out data/etoile
    jaxfp run experiments/csi/table1.py --workdir runs/table1 --config.data.path=data/etoile
Small size (the small etoile set; one seed of its four backbones took 21 min on 2 CPU cores, so
the five seeds take ~1.5-2 h):
    python -m datagen generate --out data/etoile_small --config datagen/config.py:small
    jaxfp run experiments/csi/table1.py:small --workdir runs/table1_small
Test size: experiments/csi/table1.py:test (with --config.data.path of a tiny set).

Each seed is one replicate: its own held-out test receivers and labelled 10%, batches, noise
draws and initialisation (the traced receivers and their positions are fixed).
"""

import ml_collections

from jaxfp.config import repo_path

SIZES = ("", "small", "test")  # checked by jaxfp.config.load_config: an unknown size is an error


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.method = "csi.table1"
    c.seed = 0
    c.seeds = (0, 1, 2, 3, 4)  # trained at once, as members; each seed its own split
    # The members' steps: one vmapped program ("vmap", the accelerator's choice) or a jitted
    # step per seed in turn ("loop": up to 1.65x faster for ResNetTiny on XLA:CPU).
    c.seed_execution = "vmap"
    c.backbones = ("shufflenet_v2", "mobilenet_v2", "resnet18", "resnet34", "resnet50", "resnet101")
    c.target_scale_m = 100.0  # the BS position and sectors come from the data set
    c.sector_frame = True  # predict in the serving sector's frame, rotate back
    c.eval_batch = 64
    c.data = ml_collections.ConfigDict(
        dict(
            path=repo_path(__file__, "data", "etoile"),
            labelled_fraction=0.1,
            test_fraction=0.1,
            drop_pathless=True,
            labelled_sampling="uniform",  # the paper's random 10%; 'uneven': denser blobs
        )
    )
    c.preprocess = ml_collections.ConfigDict(
        dict(
            snr_db=20.0,
            max_ta_s=0.1e-6,
            crop_taps=0,  # 0: the fewest taps that keep every LoS tap under the longest TA
            log_power=True,  # a channel of per-pixel power in dB beside the unit-RMS map
            strong_snr_drop_db=10.0,
            strong_ta_factor=2.0,
        )
    )
    c.model = ml_collections.ConfigDict(dict(dropout=0.2))
    c.width = 0  # 0: the backbone's own width
    c.train = ml_collections.ConfigDict(
        dict(
            batch_size=32,
            unlabelled_batch_size=32,
            num_steps=20_000,
            log_every=100,
            eval_every=0,
            checkpoint_every=2_000,
            max_to_keep=2,
        )
    )
    # Every stage's optimiser; a stage's length sets the cosine decay, a stage may set its rate.
    c.optimizer = ml_collections.ConfigDict(
        dict(name="adamw", learning_rate=1e-3, weight_decay=1e-4, schedule="cosine")
    )
    if arg == "small":
        c.data.path = repo_path(__file__, "data", "etoile_small")
        c.backbones = ("shufflenet_v2", "mobilenet_v2", "resnet18", "resnet34")
        c.train.num_steps = 600
        c.train.checkpoint_every = 200
        c.train.log_every = 20
    if arg == "test":
        c.seeds = (0, 1)
        c.backbones = ("resnet18", "shufflenet_v2")
        c.preprocess.crop_taps = 8
        c.eval_batch = 4
        c.train.batch_size = 4
        c.train.num_steps = 3
        c.train.checkpoint_every = 2
        c.train.log_every = 1
    return c

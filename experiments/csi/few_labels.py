"""CSI positioning with few labels: supervised, Mean Teacher, FixMatch (confidence and distance),
the consistency framework (one round and iterative), the ensemble and the sector heads, for all
seeds at once (the CSI paper's Table II and Fig. 4); our training-free signature WkNN beside them.

Paper scale (full etoile set, ResNet34 as the paper's §IV-B, hours on a GPU):
    python -m datagen generate --out data/etoile
    jaxfp run experiments/csi/few_labels.py --workdir runs/csi_ssl --config.data.path=data/etoile
Small size (the small etoile set, a tiny ResNet, 3 seeds: too few for a verdict; Mean Teacher and
FixMatch at 52 passes over the unlabelled pool: ~2 h on 2 idle CPU cores, from its stages' rates):
    python -m datagen generate --out data/etoile_small --config datagen/config.py:small
    jaxfp run experiments/csi/few_labels.py:small --workdir runs/csi_ssl_small
The full set at a CPU budget (tiny ResNet, 5 passes, 5 seeds; ~2.5 h on 2 idle cores, scaled from
the measured 3-seed rates):
    jaxfp run experiments/csi/few_labels.py:full_cpu --workdir runs/csi_full --config.data.path=data/etoile
Test size: experiments/csi/few_labels.py:test (with --config.data.path of a tiny set).

Each seed is one replicate: its own held-out test receivers, labelled 10% and unlabelled pool,
batches, noise draws, pseudo labels and initialisation (the traced receivers are fixed).
Our variants of this protocol are in variants.py.
"""

import ml_collections

from jaxfp.config import repo_path, sibling
from jaxfp.methods.csi.run import METHOD_NAMES

SIZES = ("", "small", "full_cpu", "test")  # checked by load_config: an unknown size is an error


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    # Data, split, preprocessing, optimiser and training settings are Table I's.
    c = sibling(__file__, "table1.py").get_config()
    c.method = "csi.few_labels"
    del c.backbones
    c.methods = METHOD_NAMES
    c.backbone = "resnet34"
    c.finetune = ml_collections.ConfigDict(dict(num_steps=5_000, learning_rate=3e-4))
    # Mean Teacher and FixMatch train for their own num_steps: they need many passes over the
    # unlabelled pool (>= 50 with mu = unlabelled / labelled batch >= 2, measured on the small set).
    steps = c.train.num_steps
    c.mean_teacher = ml_collections.ConfigDict(
        dict(ema_decay=0.99, weight=1.0, rampup_fraction=0.4, num_steps=steps)
    )
    c.fixmatch = ml_collections.ConfigDict(
        dict(threshold=0.95, cell_m=10.0, distance_threshold_m=5.0, weight=1.0, num_steps=steps)
    )
    c.train.unlabelled_batch_size = 2 * c.train.batch_size
    c.consistency = ml_collections.ConfigDict(
        dict(
            k=5,
            agreement_radius_m=5.0,
            rounds=3,
            pseudo_weight=1.0,
            network_b="mobilenet_v2",  # source B: another architecture than config.backbone
            signature_bins=16,  # source A: delay-spectrum bins per angle of the CSI signature
            report_radii_m=(1.0, 2.0, 3.0, 5.0),
            gate="none",  # the paper: stage 3 always; 'oracle' (ours, reads the truth): variants.py
        )
    )
    c.ensemble = ml_collections.ConfigDict(
        dict(
            bootstrap=True,
            consensus_radius_m=10.0,
            groups=dict(
                resnet34=dict(backbone="resnet34", learning_rate=1e-3),
                resnet34_lr3e4=dict(backbone="resnet34", learning_rate=3e-4),
                resnet18=dict(backbone="resnet18", learning_rate=1e-3),
                mobilenet_v2=dict(backbone="mobilenet_v2", learning_rate=1e-3),
            ),
        )
    )
    c.sector = ml_collections.ConfigDict(dict(rotated_weight=0.5, consistency_weight=0.5))
    if arg == "small":
        c.data.path = repo_path(__file__, "data", "etoile_small")
        c.seeds = (0, 1, 2)
        # 3,338 unlabelled receivers: 2,700 steps x 64 = 52 passes.
        cpu_budget(c, num_steps=1_200, ssl_steps=2_700, checkpoint_every=400)
    if arg == "full_cpu":  # the full etoile set at what 2 CPU cores train in a few hours
        # ~25,400 unlabelled receivers: 2,000 steps x 64 = 5 passes (a CPU budget, not enough).
        cpu_budget(c, num_steps=1_500, ssl_steps=2_000, checkpoint_every=500)
        c.eval_batch = 256
    if arg == "test":
        c.seeds = (0, 1)
        c.backbone = "resnet_tiny"
        c.seed_execution = "loop"
        c.preprocess.crop_taps = 8
        c.eval_batch = 8
        c.train.batch_size = 4
        c.train.unlabelled_batch_size = 4
        c.train.num_steps = c.mean_teacher.num_steps = c.fixmatch.num_steps = 3
        c.train.checkpoint_every = 2
        c.train.log_every = 1
        c.finetune.num_steps = 2
        c.consistency.rounds = 2
        c.consistency.k = 3
        c.consistency.agreement_radius_m = 1e6  # keep every label, so each stage has data
        c.consistency.network_b = "resnet_tiny"
        c.consistency.signature_bins = 4
        c.ensemble.groups = dict(
            tiny=dict(backbone="resnet_tiny", learning_rate=1e-3),
            tiny_wide=dict(backbone="resnet_tiny", learning_rate=1e-3, width=8),
        )
    return c


def cpu_budget(
    c: ml_collections.ConfigDict, num_steps: int, ssl_steps: int, checkpoint_every: int
) -> None:
    """The CPU sizes: the tiny ResNet for every method, seeds looped, mu = 2, tiny ensemble groups."""
    c.backbone = "resnet_tiny"
    c.seed_execution = "loop"
    c.train.num_steps = num_steps
    c.train.unlabelled_batch_size = 64  # mu = 2
    c.mean_teacher.num_steps = ssl_steps
    c.fixmatch.num_steps = ssl_steps
    c.train.log_every = 50
    c.train.checkpoint_every = checkpoint_every
    c.finetune.num_steps = 400
    c.ensemble.groups = dict(
        tiny=dict(backbone="resnet_tiny", learning_rate=1e-3),
        tiny_lr3e3=dict(backbone="resnet_tiny", learning_rate=3e-3),
        tiny_wide=dict(backbone="resnet_tiny", learning_rate=1e-3, width=24),
    )

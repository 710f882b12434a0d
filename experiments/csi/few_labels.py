"""CSI positioning with few labels: supervised (stage 1) and the labelled-only control at the
budget, Mean Teacher (the paper's and ours with augmentation), FixMatch (confidence and
distance), the consistency framework (one round and iterative), the ensemble and the sector heads,
for all seeds at once (the CSI paper's Table II and Fig. 4); our training-free signature WkNN
beside them. Every compared row trains the same number of gradient steps
(`jaxfp.methods.csi.budget.row_steps`, the `steps` column of the results).

Paper scale (full etoile set, ResNet34 as the paper's §IV-B; 65,000 steps per row: an
accelerator's job):
    python -m datagen generate --out data/etoile
    jaxfp run experiments/csi/few_labels.py --workdir runs/csi_ssl --config.data.path=data/etoile
Small size (the small etoile set, a tiny ResNet, 3 seeds: too few for a verdict; 4,800 steps per
row, ~5 h on 2 idle CPU cores, scaled by steps from the stages' measured rates):
    python -m datagen generate --out data/etoile_small --config datagen/config.py:small
    jaxfp run experiments/csi/few_labels.py:small --workdir runs/csi_ssl_small
The full set at a CPU budget (tiny ResNet, 3,900 steps per row, 5 seeds; ~6 h on 2 idle cores,
scaled the same way):
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
    # Fine-tunes (models A and B, stage 3) use their own rate; their steps are the consistency
    # section's. The budget of every compared row is the iterative framework's total steps.
    c.finetune = ml_collections.ConfigDict(dict(learning_rate=3e-4))
    c.mean_teacher = ml_collections.ConfigDict(
        dict(ema_decay=0.99, weight=1.0, rampup_fraction=0.4)
    )
    c.fixmatch = ml_collections.ConfigDict(
        dict(
            threshold=0.95,
            cell_m=10.0,
            distance_threshold_m=5.0,
            weight=1.0,
            position_unit_m=0.0,  # 0: the cell size (position terms in cells^2, CE in nats)
        )
    )
    c.train.unlabelled_batch_size = 2 * c.train.batch_size
    c.consistency = ml_collections.ConfigDict(
        dict(
            k=5,
            agreement_radius_m=5.0,
            rounds=3,
            finetune_steps=5_000,  # models A and B, each round
            stage3_steps=5_000,  # stage 3, each round
            pseudo_weight=1.0,
            signature_bins=16,  # interpolation A: delay-spectrum bins per angle
            aligned_taps=16,  # interpolation B: delay taps kept after the strongest
            aligned_lead=2,  # interpolation B: taps kept before the strongest
            report_radii_m=(1.0, 2.0, 3.0, 5.0),
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
        # Budget 1,200 + 3 x 1,200 = 4,800 steps; 3,338 unlabelled receivers: x 64 = 92 passes.
        cpu_budget(c, num_steps=1_200, checkpoint_every=400)
    if arg == "full_cpu":  # the full etoile set at what 2 CPU cores train in several hours
        # Budget 1,500 + 2 x 1,200 = 3,900 steps; ~25,400 unlabelled receivers: x 64 = 10 passes.
        cpu_budget(c, num_steps=1_500, checkpoint_every=500)
        c.consistency.rounds = 2
        c.eval_batch = 256
    if arg == "test":
        c.seeds = (0, 1)
        c.backbone = "resnet_tiny"
        c.seed_execution = "loop"
        c.preprocess.crop_taps = 8
        c.eval_batch = 8
        c.train.batch_size = 4
        c.train.unlabelled_batch_size = 4
        c.train.num_steps = 4  # budget 4 + 2 x (2 x 2 + 2) = 16 steps, 8 per ensemble group
        c.train.checkpoint_every = 2
        c.train.log_every = 1
        c.consistency.finetune_steps = 2
        c.consistency.stage3_steps = 2
        c.consistency.rounds = 2
        c.consistency.k = 3
        c.consistency.agreement_radius_m = 1e6  # keep every label, so each stage has data
        c.consistency.signature_bins = 4
        c.consistency.aligned_taps = 8
        c.ensemble.groups = dict(
            tiny=dict(backbone="resnet_tiny", learning_rate=1e-3),
            tiny_wide=dict(backbone="resnet_tiny", learning_rate=1e-3, width=8),
        )
    return c


def cpu_budget(c: ml_collections.ConfigDict, num_steps: int, checkpoint_every: int) -> None:
    """The CPU sizes: the tiny ResNet for every method, seeds looped, mu = 2, 400-step fine-tunes,
    tiny ensemble groups."""
    c.backbone = "resnet_tiny"
    c.seed_execution = "loop"
    c.train.num_steps = num_steps
    c.train.unlabelled_batch_size = 64  # mu = 2
    c.train.log_every = 50
    c.train.checkpoint_every = checkpoint_every
    c.consistency.finetune_steps = 400
    c.consistency.stage3_steps = 400
    c.ensemble.groups = dict(
        tiny=dict(backbone="resnet_tiny", learning_rate=1e-3),
        tiny_lr3e3=dict(backbone="resnet_tiny", learning_rate=3e-3),
        tiny_wide=dict(backbone="resnet_tiny", learning_rate=1e-3, width=24),
    )

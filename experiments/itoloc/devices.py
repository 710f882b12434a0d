"""iToLoc under device heterogeneity: train on some devices, test per held-out device.

Synthetic world with per-device gains and offsets (the default; the shift is known):
    jaxfp run experiments/itoloc/devices.py --workdir runs/itoloc_devices
UJIIndoorLoc (a directory or zip with trainingData.csv / validationData.csv; phones held out):
    jaxfp run experiments/itoloc/devices.py:uji --workdir runs/itoloc_uji \\
        --config.data.path=/path/to/UJIndoorLoc --config.data.held_out="('phone13', 'phone14')"
Test size: experiments/itoloc/devices.py:test (synthetic) and :uji_test (the shipped fixture).
"""

import os

import ml_collections

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIZES = (
    "",
    "uji",
    "test",
    "uji_test",
)  # checked by jaxfp.config.load_config: an unknown size is an error


def model_variants() -> ml_collections.ConfigDict:
    """iToLoc and its ablations as overrides of `config.model` (shared with drift.py)."""
    return ml_collections.ConfigDict(
        dict(
            itoloc={},
            plain_cnn=dict(heads=("conv3",), adversary_weight=0.0, spatial_weight=0.0),
            no_image=dict(image="vector"),
            no_spatial=dict(spatial_weight=0.0),
            no_adversary=dict(adversary_weight=0.0),
            # λ = 1 (DANN's own setting) beside the default 0.1: is the adversary too weak?
            adversary_1=dict(adversary_weight=1.0),
        )
    )


def base_config(method: str) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.method = method
    c.seed = 0
    c.seeds = (0, 1, 2)
    # Seeds' training steps one jitted step per seed in turn: 1.7-1.9x faster than one vmapped
    # program for these conv nets on XLA:CPU (experiments/bench/itoloc.py); "vmap" is the other.
    c.seed_execution = "loop"
    c.image = ml_collections.ConfigDict(dict(n_aps=16, missing_dbm=-110.0))
    c.model = ml_collections.ConfigDict(
        dict(
            image="eq1",  # or "vector" (no image transform)
            heads=("conv3", "conv5", "residual"),  # M1, M2, M3
            dropout=0.5,
            spatial_weight=0.1,  # γ (the paper gives none; Ls is in metres)
            adversary_weight=0.1,  # λ after the warm-up (the paper gives none)
        )
    )
    c.variants = model_variants()
    c.run_variants = ("itoloc", "plain_cnn", "no_image", "no_spatial", "no_adversary")
    c.train = ml_collections.ConfigDict(
        dict(
            num_steps=3000,
            batch_size=32,  # §V-A
            learning_rate=0.1,  # §V-A, divided by 10 on a plateau
            momentum=0.9,
            weight_decay=1e-4,
            plateau_steps=100,  # the loss is averaged over this many steps ...
            plateau_patience=5,  # ... and the rate drops after this many such windows without gain
            log_every=100,
            checkpoint_every=500,
            max_to_keep=2,
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
    c.knn = ml_collections.ConfigDict(dict(k=3, representation="positive"))
    c.region_cell_m = 4.0
    c.eval_batch = 512
    return c


def shrink_for_tests(c: ml_collections.ConfigDict) -> None:
    """The `:test` sizes both protocols share: two seeds, tiny images, a few steps of each kind."""
    c.seeds = (0, 1)
    c.image.n_aps = 6
    c.train.update(
        dict(num_steps=4, log_every=2, checkpoint_every=2, batch_size=8, plateau_steps=2)
    )
    c.cotrain.update(dict(rounds=3, pool_base=4, sigma0=0.0, dropout_passes=3, smear_every=1))
    c.cotrain_train.update(
        dict(num_steps=2, log_every=1, checkpoint_every=1, batch_size=4, plateau_steps=1)
    )


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    c = base_config("itoloc.devices")
    c.domain_keys = ("device",)
    # Co-trained (§IV) on the held-out devices' unlabelled target scans after the offline
    # training, scored on the same scored scans as before the update.
    c.update_variants = ("itoloc",)
    c.cotrain.update(dict(rounds=4))  # the pool holds all 480 target scans from round 3
    c.cotrain_train.update(dict(num_steps=50, batch_size=16))
    c.data = ml_collections.ConfigDict(
        dict(
            source="synthetic",
            path="",
            train_parts=("train",),
            test_parts=("test",),
            format="auto",
            held_out=("device2", "device3"),
            # Of each held-out device's scans, this fraction trains the discriminator unlabelled
            # (the target domain, §III-A) and is not scored; 0: source devices only.
            unlabelled_target_fraction=0.5,
            floor_height_m=4.0,
        )
    )
    c.synthetic = ml_collections.ConfigDict(
        dict(
            width_m=20.0,
            height_m=12.0,
            rp_spacing_m=2.0,
            n_aps=16,
            n_devices=4,
            device_offset_db=6.0,  # per-device offset ~ N(0, 6 dB) ...
            device_gain_spread=0.1,  # ... and gain ~ N(1, 0.1)
            shadowing_db=4.0,
            train_scans_per_rp=10,
            test_scans_per_rp=8,  # half unlabelled target, half scored
            seed=0,
        )
    )
    if arg in ("uji", "uji_test"):
        c.data.source = "real"
        c.data.train_parts = ("train",)
        c.data.test_parts = ("train", "test")
        c.data.held_out = ("phone13", "phone14")
    if arg in ("test", "uji_test"):
        shrink_for_tests(c)
        c.synthetic.update(
            dict(width_m=8.0, height_m=6.0, train_scans_per_rp=2, test_scans_per_rp=2)
        )
        c.run_variants = ("itoloc", "plain_cnn", "no_image")
    if arg == "uji_test":
        c.data.path = os.path.join(REPO, "tests", "fixtures", "ujiindoorloc_mini")
    return c

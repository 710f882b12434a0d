"""ComGAN's completion and localization study (the paper's §IV: Tables I-II, Fig. 4): ComGAN, its
ablations (Lite-ComGAN, K = 1 / 2 / 3) and its baselines (cGAN, GPR-GAN, U-Net, IDW, Gaussian process).

Synthetic room with the paper's geometry (40 RPs 1 m apart, six RUs; the default):
    jaxfp run experiments/comgan/completion.py --workdir runs/comgan_synthetic
UJI long-term library set, month 1 (49 RPs; the six most consistently detected APs as RUs):
    jaxfp run experiments/comgan/completion.py:uji --workdir runs/comgan_uji \\
        --config.data.path=/path/to/uji-lib-longterm-months01-15.zip
The adaptability study's sets (Fig. 4): DSI1's training part (230 RPs, ~6 scans each; shipped
in data/), and UJIIndoorLoc (UJI1 of the fingerprinting benchmarks) building 2 floor 3, the floor
with the most training scans (113 RPs, ~20 scans each):
    jaxfp run experiments/comgan/completion.py:dsi --workdir runs/comgan_dsi
    jaxfp run experiments/comgan/completion.py:uji1 --workdir runs/comgan_uji1 \\
        --config.data.path=/path/to/UJI1.mat
The room whose RUs deviate independently (no per-scan term shared across RUs):
    jaxfp run experiments/comgan/completion.py:independent --workdir runs/comgan_independent
Test sizes: experiments/comgan/completion.py:test and :uji_test
Each seed is a fresh data draw (synthetic: world, survey noise and RP split; a real set: RP split)
with its own measured RUs and initialisation.
"""

import ml_collections

from jaxfp.config import repo_path
from jaxfp.eval.iso18305 import eval_section

SIZES = (
    "",
    "independent",
    "uji",
    "dsi",
    "uji1",
    "test",
    "uji_test",
)  # checked by jaxfp.config.load_config: an unknown size is an error


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.method = "comgan.completion"
    c.seed = 0
    c.seeds = (0, 1, 2, 3, 4)
    c.data = ml_collections.ConfigDict(
        dict(
            source="synthetic",  # or "real" (path, parts, format below)
            path="",
            parts=("01/trn01",),
            format="auto",
            n_rus=6,
            missing_dbm=-100.0,
            floor_height_m=4.0,
            building=-1,  # keep only this building's scans (-1: all)
            floor=-1,  # keep only this floor's scans (-1: all)
            split=(15, 15, 10),  # RSS training / RSS testing / localization testing RPs
            per_seed_draw=True,  # False: every seed on the data draw of config.seed
            # Coordinates over the std of their centred values; "values": over the std of the
            # values as they come (the docs' results files on the room, UJI month 1 and DSI1)
            xy_scale="centred",
        )
    )
    c.synthetic = ml_collections.ConfigDict(
        dict(
            width_m=8.0,
            height_m=5.0,
            rp_spacing_m=1.0,  # 8 x 5 = 40 RPs 1 m apart
            n_rus=6,
            ru_power_dbm=-30.0,
            path_loss_exponent=3.0,
            shadowing_db=4.0,
            # Per-scan terms shared by the RUs (body shadowing by heading, occupancy): set so the
            # cross-RU predictability is UJI month 1's 0.27 (0.28 over seeds 0-4).
            body_loss_db=13.0,
            scan_common_db=3.0,
            samples_per_rp=380,  # the paper: 15,244 samples at 40 RPs
        )
    )
    # The GAN: ComGAN's settings; the variants change some of them.
    c.gan = ml_collections.ConfigDict(
        dict(
            n_critic=5,
            measured=1,  # RUs kept per training sample (the paper removes five of six)
            gp_weight=10.0,  # λ1
            aux_weight=1.0,  # λ2
            l1_weight=100.0,  # λ3
            adversarial="wasserstein",  # "bce" = the standard GAN loss (cGAN)
            generator_input="incomplete",  # "noise": noise and the RP only (cGAN [11])
            prior="none",  # "gpr": unmeasured entries start at the GP mean (GPR-GAN)
            # The paper: Adam 1e-4, betas unstated; WGAN-GP's [21] (0, 0.9), every variant alike.
            optimizer=dict(name="adam", learning_rate=1e-4, b1=0.0, b2=0.9),
            batch_size=64,
            kernel=3,
        )
    )
    c.variants = ml_collections.ConfigDict(
        dict(
            comgan={},
            lite_comgan=dict(aux_weight=0.0),
            # [11]: noise and the RP in, the standard GAN loss alone.
            cgan=dict(
                gp_weight=0.0,
                aux_weight=0.0,
                l1_weight=0.0,
                adversarial="bce",
                generator_input="noise",
            ),
            # §IV-D's "same input and output as ComGAN": the cGAN loss on ComGAN's generator.
            cgan_incomplete=dict(gp_weight=0.0, aux_weight=0.0, adversarial="bce"),
            gpr_gan=dict(prior="gpr", aux_weight=0.0),
        )
    )
    c.run_variants = ("comgan", "lite_comgan", "cgan", "gpr_gan")
    # The paper gives no iteration count. On UJI month 1, 3,000 and 6,000 give element errors
    # within 0.03 dB at K = 2 (GPR-GAN's aside) while the losses still drift ~2% per 1,000.
    c.gan_train = ml_collections.ConfigDict(
        dict(num_steps=6000, log_every=20, checkpoint_every=1000, batch_size=64, max_to_keep=2)
    )
    c.curve_windows = 6  # learning curves: the logged metrics averaged over this many windows
    # The U-Net denoiser baseline (ref. [29]): no adversary, trained on the same incomplete samples.
    c.run_unet = True
    c.unet = ml_collections.ConfigDict(
        dict(
            use_rp=False,
            measured=1,
            optimizer=dict(name="adam", learning_rate=1e-3),
            kernel=3,
        )
    )
    c.unet_train = ml_collections.ConfigDict(  # the GANs' budget
        dict(num_steps=6000, log_every=100, checkpoint_every=1000, batch_size=64, max_to_keep=2)
    )
    c.ks = (1, 2, 3)  # subsets (measured RUs) per completed sample
    c.localizer_k = 2  # the paper's choice
    c.one_subset = False  # our diagnostic of eq. 6's averaging (experiments/comgan/averaging.py)
    c.interpolation = ml_collections.ConfigDict(
        dict(idw_k=4, gp_lengths_m=(1.0, 2.0, 4.0, 8.0), gp_noises=(0.01, 0.1, 0.5))
    )
    c.localizer = ml_collections.ConfigDict(
        dict(
            num_steps=2000,
            batch_size=64,
            optimizer=dict(name="adam", learning_rate=1e-3),
            kernel=3,
            log_every=100,
            checkpoint_every=1000,
            max_to_keep=2,
        )
    )
    # The ISO/IEC 18305 and IPIN constants of the localizer's standard fields on a real set
    # with floors (the 3-D error's floor height, not data.floor_height_m's RP heights)
    c.eval = eval_section(bootstrap_resamples=1000)
    if arg in ("uji", "uji_test"):
        c.data.source = "real"
        c.data.path = repo_path(__file__, "data", "uji-lib-longterm-months01-15.zip")
        c.data.parts = tuple(f"01/trn{i:02d}" for i in range(1, 16))
    if arg == "independent":
        c.synthetic.body_loss_db = 0.0
        c.synthetic.scan_common_db = 0.0
    if arg == "uji1":
        c.data.source = "real"
        c.data.path = repo_path(__file__, "data", "UJI1.mat")
        c.data.parts = ("train",)
        c.data.building, c.data.floor = 2, 3
    if arg == "dsi":
        c.data.source = "real"
        c.data.path = repo_path(__file__, "data", "DSI1.mat")
        c.data.parts = ("train",)
    if arg in ("test", "uji_test"):
        c.seeds = (0, 1)
        c.synthetic.samples_per_rp = 12
        c.gan_train.update(dict(num_steps=4, log_every=2, checkpoint_every=2))
        c.unet_train.update(dict(num_steps=4, log_every=2, checkpoint_every=2))
        c.localizer.update(dict(num_steps=4, log_every=2, checkpoint_every=2))
        c.eval.bootstrap_resamples = 50
        c.ks = (1, 2)
    if arg == "uji_test":
        c.data.path = repo_path(__file__, "tests", "fixtures", "longterm_mini.zip")
        c.data.parts = ("01/trn01",)
        c.data.split = (2, 2, 1)
    return c

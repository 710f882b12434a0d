"""ComGAN: radio-map completion with a WGAN-GP conditional GAN (Zhang et al.), its ablations,
interpolation baselines and the localization study."""

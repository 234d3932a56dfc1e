"""Decoupled sparse generative models for muon calorimeter images (Lu et al. 2019).

A generator maps noise to per-pixel parameters theta = (logit pi, eta); an image is
x = z * beta with z ~ Bern(pi) and beta ~ p(. | eta) (a `NonZeroLikelihood`). Modules:

- `generators`   4-layer fully connected and 4-layer deconvolutional generators (optionally pT-conditional)
- `likelihoods`  the non-zero-value likelihoods (Gaussian / log-normal with fixed sigma, Gaussian with
                 learned per-pixel sigma, gamma) and their interface
- `objectives`   the (batch, K) log-likelihood matrix, `paper` and `bound` objectives, the occupancy term
- `data`         loading and validating training images
- `training`     the seeded, resumable training loop
- `sampling`     generated images from a trained model into the images.h5 schema
- `baseline`     the `independent_pixels` baseline
- `synthetic`    synthetic sparse images for tests and benchmarks (no physics)
- `families`     the harness shared by the comparison families (`family: gan | vae`):
                 seeded resumable epochs, model files, sampling into the same schema
- `gan`, `vae`   a LAGAN-style GAN and a VAE whose decoder is a decoupled generator

CLI: ``python -m model {train,sample,baseline,synthetic} --help``.
"""

__all__ = ["ModelError"]

from .errors import ModelError

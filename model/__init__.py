"""Decoupled sparse generative models for muon calorimeter images (Lu et al. 2019).

A generator maps noise to per-pixel parameters theta = (logit pi, eta); an image is
x = z * beta with z ~ Bern(pi) and beta ~ p(. | eta) (a `NonZeroLikelihood`). Modules:

- `generators`   4-layer fully connected and 4-layer deconvolutional generators (optionally pT-conditional)
- `likelihoods`  the non-zero-value likelihoods (Gaussian / log-normal with fixed sigma, Gaussian with
                 learned per-pixel sigma, gamma) and their interface
- `objectives`   the (batch, K) log-likelihood matrix, `paper` and `bound` objectives, the occupancy term
- `config`       the training settings of one model (TrainConfig)
- `data`         loading and validating training images
- `towerdata`    images and the towers behind them as a torch Dataset (padded or ragged batches)
- `training`     the one epoch loop every family runs: seeded, resumable, bitwise-reproducible
- `checkpoint`   checkpoint, model.pt and train_log.csv I/O (the one place model files are written/read)
- `decoupled`    the paper's decoupled generator as a family: training step, rebuilding, sampling
- `gan`, `vae`   comparison families: a LAGAN-style GAN and a VAE whose decoder is a decoupled generator
- `sarm`         comparison family: the sparse autoregressive model (gated PixelCNN, exact likelihood,
                 cached pixel-by-pixel sampler; Lu et al. 2021)
- `families`     the family table: train, save and load a model of any family
- `sampling`     generated images from a trained model (any family) into the images.h5 schema
- `baseline`     the `independent_pixels` baseline
- `synthetic`    synthetic sparse images for tests and benchmarks (no physics)

Imports point one way: errors/config/data/generators/likelihoods/objectives <- checkpoint <-
training <- decoupled <- gan, vae, sarm <- families <- sampling <- baseline <- cli.

CLI: ``python -m model {train,sample,baseline,synthetic} --help``.
"""

__all__ = ["ModelError"]

from .errors import ModelError

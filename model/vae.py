"""A VAE whose decoder is a decoupled generator and whose likelihood is the sparse cross entropy.

The paper's future work: use the sparse loss as a VAE likelihood. The encoder q(u | x) is a
Gaussian from an MLP of log(1 + x / GeV); the decoder is the decoupled generator of the
configured `arch` (model/generators.py) mapping the latent u to per-pixel (logit pi, eta),
started at the data's independent-pixel marginals exactly as the decoupled model is. The
reconstruction term is the decoupled log-likelihood of the image,

    log p(x | u) = sum_i [z_i log pi_i + (1 - z_i) log(1 - pi_i) + z_i log p(x_i | eta_i)],  z = (x != 0),

with the configured NonZeroLikelihood (model/likelihoods.py), and the loss is minus the
weighted mean of  log p(x | u) - kl_weight * KL(q(u | x) || N(0, 1))  (the ELBO for kl_weight 1),
one reparameterised latent per image. Sampling: u ~ N(0, 1) -> decoder -> x = Bern(pi) * beta,
beta ~ p(. | eta): the decoupled model's sampler (model/decoupled.py) on the decoder.
`noise_dim` is the latent size and `width` the hidden units of encoder and decoder.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from common.seeds import derive_seed

from . import decoupled
from .config import TrainConfig
from .data import TrainingData
from .device import resolve_device
from .errors import ModelError
from .generators import Generator, GeneratorSpec, build_generator
from .likelihoods import NonZeroLikelihood, build_likelihood
from .training import TIMING_COLUMNS, Batch, TrainResult, run_epochs

MODEL_FORMAT = "sparse-muon-vae-model/1"
OBJECTIVE = "elbo"  # recorded as the `objective` attribute of generated files
LOG_COLUMNS = ("epoch", "loss", "recon_ll", "kl", "elbo", "mean_pi", "data_occupancy", *TIMING_COLUMNS)
#: the encoder's log-variance is clamped to this range (nats) so exp() cannot overflow early in training
LOGVAR_RANGE = (-12.0, 8.0)
#: KL warm-up (Bowman et al. 2016): the KL weight rises linearly from kl_weight / KL_WARMUP_EPOCHS
#: in the first epoch to kl_weight in epoch KL_WARMUP_EPOCHS. Without it the sparse VAE falls into
#: posterior collapse (KL -> 0: an independent-pixel model), measured on the 16-pixel one-hot toy.
#: A fixed number of epochs (not a fraction of `epochs`) so that raising `epochs` and resuming
#: continues exactly as an uninterrupted run.
KL_WARMUP_EPOCHS = 10


class Encoder(nn.Module):
    """x (B, D) GeV -> mean and log-variance (B, latent) of q(u | x); an MLP of log(1 + x / GeV)."""

    def __init__(self, n_pixels: int, width: int, latent_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(n_pixels, width), nn.LeakyReLU(0.2),
            nn.Linear(width, width), nn.LeakyReLU(0.2),
            nn.Linear(width, 2 * latent_dim),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.net(torch.log1p(x)).chunk(2, dim=1)
        return mu, logvar.clamp(*LOGVAR_RANGE)


def reconstruction_log_likelihood(x: torch.Tensor, logits: torch.Tensor, eta: torch.Tensor,
                                  likelihood: NonZeroLikelihood) -> torch.Tensor:
    """(B,) log p(x_b | logits_b, eta_b) in nats: Bernoulli of z = (x != 0) plus p(x | eta) where z = 1.

    Elementwise (image b against its own parameters b); equals the diagonal of
    objectives.log_likelihood_matrix.
    """
    z = x != 0
    bernoulli = torch.where(z, F.logsigmoid(logits), F.logsigmoid(-logits))
    # log p only where the pixel is non-zero (x = 1 elsewhere keeps e.g. the log-normal's log x finite)
    values = likelihood.log_prob(torch.where(z, x, torch.ones_like(x)), eta)
    return (bernoulli + torch.where(z, values, torch.zeros_like(values))).sum(dim=1)


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """(B,) KL(N(mu, exp(logvar)) || N(0, 1)) in nats, summed over latent dimensions."""
    return 0.5 * (mu * mu + logvar.exp() - 1.0 - logvar).sum(dim=1)


def elbo_terms(encoder: Encoder, decoder: Generator, likelihood: NonZeroLikelihood, x: torch.Tensor,
               eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per image: reconstruction log-likelihood (B,), KL (B,), and the decoder's logits (B, D); eps ~ N(0, 1)."""
    mu, logvar = encoder(x)
    u = mu + torch.exp(0.5 * logvar) * eps
    logits, eta = decoder(u)
    return reconstruction_log_likelihood(x, logits, eta, likelihood), kl_to_standard_normal(mu, logvar), logits


def kl_weight_at(cfg: TrainConfig, epoch: int) -> float:
    """KL weight in (0-based) `epoch`: rises linearly to cfg.kl_weight over the first KL_WARMUP_EPOCHS epochs."""
    return float(cfg.kl_weight) * min(1.0, (epoch + 1) / KL_WARMUP_EPOCHS)


def train(data: TrainingData, cfg: TrainConfig, checkpoint_dir: str | Path | None, *,
          progress: bool = True) -> TrainResult:
    """Train the sparse VAE on `data` (one latent sample per image), checkpointing every epoch."""
    device = resolve_device(cfg.device)
    decoder, likelihood = decoupled.init_model(data, cfg)  # decoupled generator at the data marginals, seeded
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(cfg.seed, "init", "encoder"))
        encoder = Encoder(data.n_pixels, cfg.width, cfg.noise_dim)
    for module in (encoder, decoder, likelihood):
        module.to(device)
    params = [*encoder.parameters(), *decoder.parameters(), *likelihood.parameters()]
    optimizer = torch.optim.Adam(params, lr=cfg.lr)

    def step(batch: Batch) -> dict[str, torch.Tensor]:
        x, w = batch.x, batch.weight
        eps = torch.randn(x.shape[0], cfg.noise_dim, generator=batch.rng, device=device)
        recon, kl, logits = elbo_terms(encoder, decoder, likelihood, x, eps)
        loss = -(w * (recon - kl_weight_at(cfg, batch.epoch) * kl)).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        recon_w, kl_w = (w * recon.detach()).mean(), (w * kl.detach()).mean()
        return {"loss": loss.detach(), "recon_ll": recon_w, "kl": kl_w, "elbo": recon_w - kl_w,
                "mean_pi": torch.sigmoid(logits.detach()).mean()}

    modules = {"encoder": encoder, "decoder": decoder, "likelihood": likelihood}
    rows, start = run_epochs(
        data, cfg, checkpoint_dir, device=device, modules=modules, optimizers={"vae": optimizer}, step=step,
        columns=LOG_COLUMNS, static={"data_occupancy": float(data.occupancy().mean())}, progress=progress,
    )
    fixed = {
        "decoder_spec": dict(vars(decoder.spec)),
        "encoder": {"n_pixels": data.n_pixels, "width": cfg.width, "latent_dim": cfg.noise_dim},
        "likelihood": {"name": likelihood.name, **likelihood.extra_state_dict()},
    }
    return TrainResult(modules, cfg, fixed, rows, str(device), start)


class SparseVAE(nn.Module):
    """A trained VAE rebuilt from model.pt: encoder, decoder (a Generator) and likelihood."""

    def __init__(self, encoder: Encoder, decoder: Generator, likelihood: NonZeroLikelihood) -> None:
        super().__init__()
        self.encoder, self.decoder, self.likelihood = encoder, decoder, likelihood


def rebuild(record: dict[str, Any], device: torch.device | str = "cpu") -> SparseVAE:
    """Encoder, decoder and likelihood from a model.pt record."""
    fixed = record["fixed"]
    decoder = build_generator(GeneratorSpec(**fixed["decoder_spec"]))
    lik = dict(fixed["likelihood"])
    likelihood = build_likelihood(lik.pop("name"), **lik)
    encoder = Encoder(**fixed["encoder"])
    for module, name in ((encoder, "encoder"), (decoder, "decoder"), (likelihood, "likelihood")):
        module.load_state_dict(record["modules"][name])
    return SparseVAE(encoder, decoder, likelihood).to(device).eval()


def sample_images(vae: SparseVAE, n: int, *, seed: int, batch_size: int = 4096, device: torch.device | str = "cpu",
                  progress: bool = True) -> np.ndarray:
    """(n, npix, npix) float32 images: u ~ N(0, 1) -> decoder -> x = Bern(pi) * beta (the decoupled sampler)."""
    if n < 1:
        raise ModelError(f"number of images to generate must be >= 1, got {n}")
    return decoupled.sample_images(vae.decoder, vae.likelihood, n, seed=seed, batch_size=batch_size, device=device,
                            progress=progress)


def generate(vae: SparseVAE, n: int, *, seed: int, batch_size: int = 4096, device: torch.device | str = "cpu",
             progress: bool = True, pt_gev: np.ndarray | None = None) -> np.ndarray:
    """(n, npix, npix) float32 images from a rebuilt VAE (unconditional: pt_gev must be None)."""
    if pt_gev is not None:
        raise ModelError("the vae family is unconditional; it cannot be sampled at given muon pTs")
    return sample_images(vae, n, seed=seed, batch_size=batch_size, device=device, progress=progress)


def conditional(vae: SparseVAE) -> bool:
    """The vae family is unconditional."""
    return False


def sample_attrs(record: dict[str, Any]) -> dict[str, Any]:
    """Attributes of a generated file that describe this family's model."""
    return {"objective": OBJECTIVE}

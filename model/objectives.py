"""The (batch, K) log-likelihood matrix and the two training objectives (OBJECTIVE.md).

log p(x_b | theta_k) = sum_i [z_bi log pi_ki + (1 - z_bi) log(1 - pi_ki) + z_bi log p(x_bi | eta_ki)]
for B data images against K generated parameter sets, computed as one matrix product
(features of x) @ (coefficients of theta)^T. With l = logit(pi):
z log sig(l) + (1 - z) log sig(-l) = z * l + log sig(-l), so the Bernoulli part is z @ l^T
plus a per-k constant.

- `paper`: eq. 2 as written, mean over k of log p(x | theta_k). Its optimum puts every
  theta at the per-pixel maximum-likelihood values: independent pixels.
- `bound`: log (1/K) sum_k p(x | theta_k), the K-sample (importance-weighted) lower bound of
  log p_G(x); it rewards covering the data with different thetas (pixel correlations).
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from .errors import ModelError
from .likelihoods import NonZeroLikelihood


def log_likelihood_matrix(
    x: torch.Tensor, logits: torch.Tensor, eta: torch.Tensor, likelihood: NonZeroLikelihood
) -> torch.Tensor:
    """(B, K) log p(x_b | logits_k, eta_k) in nats; x (B, D) in GeV, logits and eta (K, D)."""
    z = (x != 0).to(x.dtype)  # (B, D)
    stats, base = likelihood.data_stats(x, z)  # [(B, D)], (B,)
    naturals, log_norm = likelihood.natural_params(eta)  # [(K, D)], (K, D)
    features = torch.cat([z, *stats], dim=1)  # (B, D * (1 + m))
    coefs = torch.cat([logits + log_norm, *naturals], dim=1)  # (K, D * (1 + m))
    per_k = F.logsigmoid(-logits).sum(dim=1)  # (K,) log prob of the all-zero image
    return features @ coefs.T + base[:, None] + per_k[None, :]


def paper_objective(ll: torch.Tensor) -> torch.Tensor:
    """(B,) mean over k of log p(x_b | theta_k): the Monte-Carlo estimate of eq. 2."""
    return ll.mean(dim=1)


def bound_objective(ll: torch.Tensor) -> torch.Tensor:
    """(B,) log-mean-exp over k: the K-sample lower bound of log p_G(x_b)."""
    return torch.logsumexp(ll, dim=1) - math.log(ll.shape[1])


OBJECTIVES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "paper": paper_objective,
    "bound": bound_objective,
}


def get_objective(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The objective function called `name` (`paper` or `bound`)."""
    if name not in OBJECTIVES:
        raise ModelError(f"unknown objective '{name}'; choose one of {sorted(OBJECTIVES)}")
    return OBJECTIVES[name]


def weighted_loss(per_image: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Scalar loss: minus the weighted mean objective (weights normalised to mean 1 over the data)."""
    return -(weight * per_image).mean()

"""The (batch, K) log-likelihood matrix and the two training objectives (OBJECTIVE.md).

log p(x_b | theta_k) = sum_i [z_bi log pi_ki + (1 - z_bi) log(1 - pi_ki) + z_bi log p(x_bi | eta_ki)]
for B data images against K generated parameter sets, computed as one matrix product
(features of x) @ (coefficients of theta)^T. With l = logit(pi):
z log sig(l) + (1 - z) log sig(-l) = z * l + log sig(-l), so the Bernoulli part is z @ l^T
plus a per-k constant.

pT-conditional generators (generators.py) score image b against draw k with its own pT, so
theta depends on both; `conditional_log_likelihood_matrix` keeps the cost of the unconditional
form: with pi = 1 - exp(-lambda) and lambda_bki = lambda_ki * exp(c_bi), the zero pixels give
-((1 - z) * exp(c)) @ lambda^T, and only the non-zero pixels (~1% of them) are scored per (b, k),
with the likelihood's own elementwise log_prob.

- `paper`: eq. 2 as written, mean over k of log p(x | theta_k). Its optimum puts every
  theta at the per-pixel maximum-likelihood values: independent pixels.
- `bound`: log (1/K) sum_k p(x | theta_k), the K-sample (importance-weighted) lower bound of
  log p_G(x); it rewards covering the data with different thetas (pixel correlations).
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from .errors import ModelError
from .generators import CrossParams, log_occupied
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


def conditional_log_likelihood_matrix(
    x: torch.Tensor, params: CrossParams, likelihood: NonZeroLikelihood
) -> torch.Tensor:
    """(B, K) log p(x_b | noise_k, pT_b) in nats for a pT-conditional generator; x (B, D) in GeV.

    Equals sum_i [log Bern(z_bi; pi_bki) + z_bi log p(x_bi | eta_bki)] (the elementwise reference)
    with memory O(B D + K D + K nnz): one (B, D) @ (D, K) product for the zero pixels, and
    (K, nnz) terms for the nnz non-zero pixels of the batch, summed per image by a one-hot product
    (deterministic, unlike scatter-adds on GPUs).
    """
    nz = x != 0  # (B, D)
    zero_weight = torch.where(nz, torch.zeros_like(params.rate_shift), torch.exp(params.rate_shift))  # (B, D)
    ll = -(zero_weight @ torch.exp(params.log_rate).T)  # (B, K): log P(z = 0) = -lambda, summed
    b_idx, i_idx = nz.nonzero(as_tuple=True)  # (nnz,) image and pixel of every non-zero value
    if b_idx.numel() == 0:
        return ll
    log_rate = params.log_rate[:, i_idx] + params.rate_shift[b_idx, i_idx]  # (K, nnz)
    eta = params.eta_base[:, i_idx] * params.eta_gain[b_idx, i_idx] + params.eta_bias[b_idx, i_idx]  # (K, nnz)
    per_value = log_occupied(log_rate) + likelihood.log_prob(x[b_idx, i_idx], eta, pixels=i_idx)  # (K, nnz)
    one_hot = (b_idx[None, :] == torch.arange(x.shape[0], device=x.device)[:, None]).to(per_value.dtype)
    return ll + one_hot @ per_value.T


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


def marginal_kl(pi: torch.Tensor, occupancy: torch.Tensor) -> torch.Tensor:
    """Sum over pixels of KL(Bern(data occupancy) || Bern(generator occupancy)), in nats.

    `pi` (..., D) holds the generator's per-pixel probabilities of K noise draws; their mean
    over every leading dimension is the generator's occupancy. The value is 0 exactly when it
    equals the data's `occupancy` (D,), as any p_G = p_data does. Added to the loss with
    weight `marginal_weight`, it corrects a bias of the finite-K bound: log-mean-exp over K
    parameter sets rewards sets that cover many images at once, so occupancy drifts upwards
    (measured on cell images, fc, 30 epochs: 85.9% zero pixels generated against 94.7% real;
    with the term and weight 30, 95.0%).
    """
    eps = 1e-6
    p_gen = pi.reshape(-1, pi.shape[-1]).mean(dim=0).clamp(eps, 1 - eps)
    p_data = occupancy.to(p_gen.dtype).clamp(eps, 1 - eps)
    return (p_data * (p_data / p_gen).log() + (1 - p_data) * ((1 - p_data) / (1 - p_gen)).log()).sum()

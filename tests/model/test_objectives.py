"""The (batch, K) log-likelihood matrix equals the direct per-pixel sum; objective properties."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli, Normal

from model.errors import ModelError
from model.likelihoods import GaussianFixedSigma, build_likelihood
from model.objectives import bound_objective, log_likelihood_matrix, paper_objective, weighted_loss


def _random_problem(b=7, k=5, d=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, d, generator=g, dtype=torch.float64) * 8.0
    x = x * (torch.rand(b, d, generator=g, dtype=torch.float64) < 0.2)  # sparse, ET >= 0
    logits = torch.randn(k, d, generator=g, dtype=torch.float64, requires_grad=True)
    eta = (3.0 + torch.randn(k, d, generator=g, dtype=torch.float64)).requires_grad_(True)
    return x, logits, eta


def _direct(x, logits, eta, sigma):
    """Per-pixel log p with torch.distributions on a (B, K, D) tensor, summed over pixels."""
    z = (x != 0).to(x.dtype)[:, None, :]
    bern = Bernoulli(logits=logits[None, :, :]).log_prob(z.expand(-1, logits.shape[0], -1))
    gauss = Normal(eta[None, :, :], sigma).log_prob(x[:, None, :])
    return (bern + z * gauss).sum(dim=-1)


@pytest.mark.parametrize("sigma", [0.7, 2.5])
def test_matrix_form_equals_direct_values_and_gradients(sigma):
    x, logits, eta = _random_problem()
    lik = GaussianFixedSigma(sigma)
    ll = log_likelihood_matrix(x, logits, eta, lik)
    ref = _direct(x, logits, eta, sigma)
    assert ll.shape == (7, 5)
    torch.testing.assert_close(ll, ref, rtol=1e-10, atol=1e-9)
    w = torch.linspace(0.5, 1.5, 7, dtype=torch.float64)
    for objective in (paper_objective, bound_objective):
        g1 = torch.autograd.grad(weighted_loss(objective(ll), w), (logits, eta), retain_graph=True)
        g2 = torch.autograd.grad(weighted_loss(objective(ref), w), (logits, eta), retain_graph=True)
        for a, b in zip(g1, g2, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


def test_likelihood_log_prob_matches_torch_normal():
    lik = GaussianFixedSigma(1.3)
    x, eta = torch.rand(10, dtype=torch.float64) * 5, torch.rand(10, dtype=torch.float64) * 5
    torch.testing.assert_close(lik.log_prob(x, eta), Normal(eta, 1.3).log_prob(x))


def test_all_zero_image_scores_only_bernoulli_part():
    _, logits, eta = _random_problem()
    x = torch.zeros(1, 64, dtype=torch.float64)
    ll = log_likelihood_matrix(x, logits, eta, GaussianFixedSigma(1.0))
    torch.testing.assert_close(ll[0], F.logsigmoid(-logits).sum(1))


def test_bound_is_above_paper_and_equal_for_k1():
    x, logits, eta = _random_problem()
    ll = log_likelihood_matrix(x, logits, eta, GaussianFixedSigma(1.0))
    assert (bound_objective(ll) >= paper_objective(ll) - 1e-12).all()  # Jensen
    ll1 = ll[:, :1]
    torch.testing.assert_close(bound_objective(ll1), paper_objective(ll1))
    # bound is log-mean-exp: identical columns give exactly that column
    same = ll[:, :1].expand(-1, 9)
    torch.testing.assert_close(bound_objective(same), ll[:, 0])


def test_data_weights_enter_the_loss():
    x, logits, eta = _random_problem()
    ll = log_likelihood_matrix(x, logits, eta, GaussianFixedSigma(1.0))
    w = torch.zeros(7, dtype=torch.float64)
    w[2] = 7.0  # only image 2 counts
    torch.testing.assert_close(weighted_loss(bound_objective(ll), w), -bound_objective(ll)[2])
    grad = torch.autograd.grad(weighted_loss(paper_objective(ll), w), eta)[0]
    # eta of pixels that are zero in image 2 get no gradient
    assert torch.all(grad[:, x[2] == 0] == 0) and torch.any(grad[:, x[2] != 0] != 0)


def test_bad_likelihood_settings_are_clear_errors():
    with pytest.raises(ModelError, match="sigma"):
        GaussianFixedSigma(0.0)
    with pytest.raises(ModelError, match="unknown likelihood"):
        build_likelihood("poisson", sigma_gev=1.0)
    assert math.isclose(build_likelihood("gaussian_fixed_sigma", sigma_gev=2.0).sigma_gev, 2.0)

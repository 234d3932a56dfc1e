"""delta-phi wrapping, delta-R and the pixel grid: the one place for eta-phi geometry."""
from __future__ import annotations

import numpy as np
import vector

from imaging.geometry import delta_phi, delta_r, pixel_centres, pixel_index, within_radius
from imaging.h5schema import pixel_edges


def test_delta_phi_wraps_across_pi():
    assert np.isclose(delta_phi(np.pi - 0.05, -np.pi + 0.05), -0.1)
    assert np.isclose(delta_phi(-np.pi + 0.05, np.pi - 0.05), 0.1)
    assert np.isclose(delta_phi(0.3, -0.2), 0.5)
    d = delta_phi(np.linspace(-10, 10, 1001), 2.5)
    assert (d >= -np.pi).all() and (d < np.pi).all()


def test_delta_phi_and_r_agree_with_vector():
    rng = np.random.default_rng(3)
    eta1, eta2 = rng.uniform(-2.5, 2.5, (2, 1000))
    phi1, phi2 = rng.uniform(-np.pi, np.pi, (2, 1000))
    v1 = vector.array({"pt": np.ones(1000), "eta": eta1, "phi": phi1})
    v2 = vector.array({"pt": np.ones(1000), "eta": eta2, "phi": phi2})
    np.testing.assert_allclose(delta_phi(phi1, phi2), v1.deltaphi(v2), atol=1e-12)
    np.testing.assert_allclose(delta_r(eta1, phi1, eta2, phi2), v1.deltaR(v2), atol=1e-12)


def test_pixel_index_matches_the_contract_edges():
    edges = pixel_edges(32, 0.4)
    offsets = np.random.default_rng(4).uniform(-0.4, 0.4, 10000)
    np.testing.assert_array_equal(pixel_index(offsets, 32, 0.4), np.digitize(offsets, edges) - 1)
    np.testing.assert_array_equal(pixel_index(pixel_centres(32, 0.4), 32, 0.4), np.arange(32))
    assert np.isclose(edges[1] - edges[0], 0.025)


def test_cone_cut_agrees_with_delta_r():
    rng = np.random.default_rng(5)
    eta, phi = rng.uniform(-0.5, 0.5, 5000), rng.uniform(-np.pi, np.pi, 5000)
    inside = within_radius(eta - 0.1, delta_phi(phi, 3.0), 0.4)
    np.testing.assert_array_equal(inside, delta_r(eta, phi, 0.1, 3.0) < 0.4)
    assert inside.any() and not inside.all()

"""Cell rendering (imaging.tower_shape: cell): each tower's value spread over its cell's area, exactly."""
from __future__ import annotations

import numpy as np
import pytest

from imaging.geometry import pixel_centres
from imaging.pixelise import make_cell_images

PITCH = 0.025  # 0.8 / 32


def _render(cells, values, muon_eta=0.0, muon_phi=0.0, tower_eta=None):
    """One event, one muon; `cells` rows are (eta_min, eta_max, phi_min, phi_max) in absolute coordinates."""
    cells = np.asarray(cells, dtype=np.float32).reshape(-1, 4)
    eta = np.asarray(tower_eta if tower_eta is not None else cells[:, :2].mean(axis=1), dtype=np.float32)
    return make_cell_images(
        np.array([0, len(cells)]), cells, eta, np.asarray(values, dtype=np.float32),
        np.array([0]), np.array([muon_eta], np.float32), np.array([muon_phi], np.float32),
    )[0]


def test_cell_on_pixel_edges_fills_whole_pixels():
    img = _render([(0.0, 0.05, 0.0, 0.05)], [8.0])
    expected = np.zeros((32, 32), np.float32)
    expected[16:18, 16:18] = 2.0  # 4 pixels, a quarter each
    np.testing.assert_allclose(img, expected, atol=1e-5)


def test_partial_overlaps_are_area_fractions():
    img = _render([(0.01, 0.06, 0.0, 0.025)], [10.0])
    nz = {tuple(i): float(img[tuple(i)]) for i in np.argwhere(img)}
    assert nz == pytest.approx({(16, 16): 3.0, (17, 16): 5.0, (18, 16): 2.0}, abs=1e-4)  # 0.015, 0.025, 0.01 of 0.05


def test_cell_across_phi_wrap():
    """Muon just below +pi, cell just above -pi: the cell sits at d-phi 0.01 .. 0.06."""
    img = _render([(0.0, 0.025, -np.pi, -np.pi + 0.05)], [10.0], muon_phi=np.pi - 0.01)
    assert img[16, 16] == pytest.approx(3.0, abs=1e-3)
    assert img[16, 17] == pytest.approx(5.0, abs=1e-3)
    assert img[16, 18] == pytest.approx(2.0, abs=1e-3)
    assert img.sum() == pytest.approx(10.0, abs=1e-3)


def test_cell_inside_the_disc_keeps_its_value_and_outside_is_zero():
    inside = _render([(0.013, 0.1, -0.2, -0.113)], [7.5])  # an HCAL-sized cell, off the pixel grid
    assert inside.sum() == pytest.approx(7.5, rel=1e-5)
    assert np.count_nonzero(inside) == 4 * 4  # eta 0.013..0.1 -> pixels 16..19; phi -0.2..-0.113 -> 8..11
    big = _render([(-1.0, 1.0, -1.0, 1.0)], [4.0])  # covers the whole image: uniform density
    centres = pixel_centres(32, 0.4)
    in_disc = np.hypot(centres[:, None], centres[None, :]) < 0.4
    np.testing.assert_allclose(big[in_disc], 4.0 * PITCH**2 / 4.0, rtol=1e-4)
    assert np.all(big[~in_disc] == 0)


def test_far_cells_and_events_without_muons_are_ignored():
    img = _render([(1.0, 1.087, 0.0, 0.087), (0.0, 0.05, 2.0, 2.05)], [5.0, 5.0])
    assert not img.any()
    empty = make_cell_images(np.array([0, 1, 1]), np.array([[0, 0.05, 0, 0.05]], np.float32),
                             np.array([0.02], np.float32), np.array([1.0], np.float32),
                             np.array([1]), np.array([0.0], np.float32), np.array([0.0], np.float32))
    assert empty.shape == (1, 32, 32) and not empty.any()  # the muon's event has no towers

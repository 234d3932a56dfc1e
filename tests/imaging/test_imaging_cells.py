"""Cell rendering (imaging.tower_shape: cell): each tower's value spread over its cell's area, exactly."""
from __future__ import annotations

import numpy as np
import pytest

from imaging.geometry import pixel_centres
from imaging.towers import extract_towers, render_towers

PITCH = 0.025  # 0.8 / 32


def _cell_images(tower_offsets, cells, eta, values, muon_event, muon_eta, muon_phi):
    """Cell images through the build's path: towers of each muon (extract_towers), then render_towers."""
    cells = np.asarray(cells, dtype=np.float32).reshape(-1, 4)
    values = np.asarray(values, np.float32)
    towers = extract_towers(tower_offsets, np.asarray(eta, np.float32), cells[:, 2:].mean(axis=1),
                            values, values, np.zeros(len(cells), np.float32), cells,
                            muon_event, muon_eta, muon_phi, tower_shape="cell")
    return render_towers(towers, tower_shape="cell")


def _render(cells, values, muon_eta=0.0, muon_phi=0.0, tower_eta=None):
    """One event, one muon; `cells` rows are (eta_min, eta_max, phi_min, phi_max) in absolute coordinates."""
    cells = np.asarray(cells, dtype=np.float32).reshape(-1, 4)
    eta = np.asarray(tower_eta if tower_eta is not None else cells[:, :2].mean(axis=1), dtype=np.float32)
    return _cell_images(np.array([0, len(cells)]), cells, eta, values, np.array([0]),
                        np.array([muon_eta], np.float32), np.array([muon_phi], np.float32))[0]


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
    empty = _cell_images(np.array([0, 1, 1]), np.array([[0, 0.05, 0, 0.05]], np.float32),
                         np.array([0.02], np.float32), np.array([1.0], np.float32),
                         np.array([1]), np.array([0.0], np.float32), np.array([0.0], np.float32))
    assert empty.shape == (1, 32, 32) and not empty.any()  # the muon's event has no towers


# ---------------------------------------------------------------- the three renderings, one code path
def _chunk(cells, eem, ehad, tower_eta, tower_phi, muon_eta=0.0, muon_phi=0.0):
    """An EventChunk of one event with one muon, read as tower_shape mixed would (ECal, HCal parts as ET)."""
    from imaging.reader import EventChunk
    from imaging.selection import SelectedMuons

    n = len(eem)
    f32 = lambda v: np.asarray(v, dtype=np.float32)  # noqa: E731
    chunk = EventChunk(
        path=None, entry_start=0, n_events=1, tower_offsets=np.array([0, n]), tower_eta=f32(tower_eta),
        tower_phi=f32(tower_phi), tower_et=f32(np.add(eem, ehad)), tower_eem=f32(eem),
        tower_ehad=f32(ehad),
        tower_edges=f32(cells).reshape(-1, 4), muon_offsets=np.array([0, 1]), muon_pt=f32([12.0]),
        muon_eta=f32([muon_eta]), muon_phi=f32([muon_phi]), muon_charge=f32([1.0]), event_weight=np.ones(1))
    mu = SelectedMuons(event=np.array([0]), pt=f32([12.0]), eta=f32([muon_eta]), phi=f32([muon_phi]),
                       charge=f32([1.0]), n_candidates=1)
    return chunk, mu


@pytest.mark.parametrize("shape", ["point", "cell", "mixed"])
def test_every_rendering_keeps_the_energy_of_towers_inside_the_image(shape):
    """Energy conservation: towers whose cells lie inside the disc keep their whole ET in each rendering."""
    from imaging.build import render_images
    from imaging.config import ImagingConfig

    cells = [(0.013, 0.1, -0.2, -0.113), (-0.1, -0.075, 0.05, 0.075), (0.1, 0.2, 0.0, 0.1)]
    eem, ehad = [3.0, 2.5, 0.0], [4.5, 0.0, 6.0]  # an ECal+HCal tower, an ECal tower, an HCal tower
    eta = [0.05, -0.09, 0.15]
    phi = [-0.15, 0.06, 0.04]
    chunk, mu = _chunk(cells, eem, ehad, eta, phi)
    img = render_images(chunk, mu, ImagingConfig(tower_shape=shape))[0][0]
    assert img.sum() == pytest.approx(sum(eem) + sum(ehad), rel=1e-5)
    n_cell_pixels = 16 + 1 + 16  # 4x4, one pixel, 4x4
    # mixed: the first tower's ECal point falls inside its own HCal cell, the second tower is a point
    expected_nonzero = {"point": 3, "cell": n_cell_pixels, "mixed": 16 + 1 + 16}[shape]
    assert np.count_nonzero(img) == expected_nonzero


def test_mixed_draws_ecal_as_points_and_hcal_over_cells():
    from imaging.build import render_images
    from imaging.config import ImagingConfig

    cells = [(0.0, 0.1, -0.2, -0.1)]  # an HCal cell on the pixel grid: 4 x 4 whole pixels
    chunk, mu = _chunk(cells, [3.0], [4.0], [0.06], [-0.16])
    img = render_images(chunk, mu, ImagingConfig(tower_shape="mixed"))[0][0]
    point_pixel = (18, 9)  # d-eta 0.06 in [0.05, 0.075), d-phi -0.16 in [-0.175, -0.15)
    assert img[point_pixel] == pytest.approx(3.0 + 4.0 / 16, rel=1e-5)  # the ECal point on top of its cell share
    spread = img.copy()
    spread[point_pixel] -= 3.0
    np.testing.assert_allclose(spread[16:20, 8:12], 0.25, rtol=1e-5)  # HCal: 4 GeV over 16 pixels
    assert np.count_nonzero(spread) == 16


def test_mixed_ignores_ecal_only_towers_in_the_cell_pass_across_events():
    """Per-event slices of the HCal towers stay aligned with their events (empty events included)."""
    from imaging.build import render_images
    from imaging.config import ImagingConfig
    from imaging.reader import EventChunk
    from imaging.selection import SelectedMuons

    f32 = lambda v: np.asarray(v, dtype=np.float32)  # noqa: E731
    # event 0: ECal-only tower; event 1: no towers; event 2: one HCal tower. Muons in events 0 and 2.
    cells = f32([(0.0, 0.025, 0.0, 0.025), (0.0, 0.1, 0.0, 0.1)])
    chunk = EventChunk(
        path=None, entry_start=0, n_events=3, tower_offsets=np.array([0, 1, 1, 2]), tower_eta=f32([0.01, 0.05]),
        tower_phi=f32([0.01, 0.05]), tower_et=f32([2.0, 8.0]), tower_eem=f32([2.0, 0.0]), tower_ehad=f32([0.0, 8.0]),
        tower_edges=cells,
        muon_offsets=np.array([0, 1, 1, 2]), muon_pt=f32([12, 12]), muon_eta=f32([0, 0]), muon_phi=f32([0, 0]),
        muon_charge=f32([1, 1]), event_weight=np.ones(3))
    mu = SelectedMuons(event=np.array([0, 2]), pt=f32([12, 12]), eta=f32([0, 0]), phi=f32([0, 0]),
                       charge=f32([1, 1]), n_candidates=2)
    img, towers = render_images(chunk, mu, ImagingConfig(tower_shape="mixed"))
    assert towers.counts().tolist() == [1, 1]
    assert img[0].sum() == pytest.approx(2.0) and np.count_nonzero(img[0]) == 1
    assert img[1].sum() == pytest.approx(8.0, rel=1e-5) and np.count_nonzero(img[1]) == 16

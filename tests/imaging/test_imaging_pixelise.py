"""Images from towers at known positions, through real ROOT files and the whole reader."""
from __future__ import annotations

import numpy as np
import pytest
from imaging_cases import CENTRES, one_muon_event

from imaging import ImagingConfig, build_images
from imaging.towers import extract_towers, render_towers


def _image(path, **config):
    build = build_images([path], ImagingConfig(**config), sample="background")
    return build


def test_towers_at_known_positions_give_exact_pixels(delphes_file):
    towers, muons = one_muon_event(0.3, 1.0, [
        (CENTRES[16], CENTRES[16], 5.0),
        (CENTRES[16], CENTRES[16], 1.5),   # same pixel: summed
        (CENTRES[3], CENTRES[20], 2.0),    # dR = 0.33: in
        (CENTRES[31], CENTRES[31], 7.0),   # corner of the square, dR = 0.55: out
        (2.0, 0.0, 9.0),                   # far away
    ])
    build = _image(delphes_file(towers, muons))
    assert build.images.shape == (1, 32, 32) and build.images.dtype == np.float32
    expected = np.zeros((32, 32), np.float32)
    expected[16, 16] = 6.5
    expected[3, 20] = 2.0  # axis 1 = d-eta, axis 2 = d-phi
    np.testing.assert_array_equal(build.images[0], expected)
    assert build.muon_pt[0] == 12.0 and build.muon_charge[0] == -1


def test_phi_wraps_around_pi(delphes_file):
    # muon just below +pi, tower just above -pi: d-phi = +0.06 across the boundary
    t1, m1 = one_muon_event(-1.0, np.pi - 0.01, [(0.0, 0.06, 3.0)])
    # muon just above -pi, tower just below +pi: d-phi = -0.06
    t2, m2 = one_muon_event(1.0, -np.pi + 0.01, [(0.0, -0.06, 4.0)])
    towers = {k: t1[k] + t2[k] for k in t1}
    muons = {k: m1[k] + m2[k] for k in m1}
    assert towers["Phi"][0][0] < -3.0 and towers["Phi"][1][0] > 3.0  # stored on the other side of pi
    images = _image(delphes_file(towers, muons)).images
    j_plus = int(np.floor((0.06 + 0.4) / 0.025))
    j_minus = int(np.floor((-0.06 + 0.4) / 0.025))
    assert images[0, 16, j_plus] == 3.0 and images[0].sum() == 3.0
    assert images[1, 16, j_minus] == 4.0 and images[1].sum() == 4.0


def test_dr_039_is_in_and_041_is_out(delphes_file):
    d = 0.39 / np.sqrt(2)
    e = 0.41 / np.sqrt(2)
    towers, muons = one_muon_event(0.5, -2.0, [
        (0.39, 0.0, 1.0), (0.0, -0.39, 2.0), (d, d, 4.0),        # dR = 0.39: in
        (0.41, 0.0, 8.0), (0.0, 0.41, 16.0), (-e, e, 32.0),      # dR = 0.41: out
    ])
    image = _image(delphes_file(towers, muons)).images[0]
    assert image.sum() == 7.0
    assert image[31, 16] == 1.0 and image[0, 16] == 0.0  # d-eta = 0.39 is the last d-eta pixel
    assert image[16, 0] == 2.0


def test_pixels_outside_the_disc_are_always_zero(delphes_file):
    from imaging.synthetic import random_delphes_events

    towers, muons, w = random_delphes_events(300, towers_per_event=3000, seed=5)
    images = _image(delphes_file(towers, muons, w)).images
    c = np.add.outer(CENTRES**2, CENTRES**2)
    corner = np.sqrt(np.add.outer((np.abs(CENTRES) - 0.0125) ** 2, (np.abs(CENTRES) - 0.0125) ** 2))
    assert (images[:, corner >= 0.4] == 0).all()  # pixels entirely outside the disc
    assert (images[:, c < 0.3**2] > 0).any(axis=0).mean() > 0.9  # and the inside is populated


def test_towers_of_other_events_do_not_leak(delphes_file):
    t1, m1 = one_muon_event(0.0, 0.0, [(0.1, 0.1, 1.0)])
    t2, m2 = one_muon_event(0.0, 0.0, [(-0.1, -0.1, 2.0), (0.2, 0.0, 3.0)])
    t3 = {"ET": [[5.0]], "Eta": [[0.0]], "Phi": [[0.0]]}  # event without muon
    m3 = {"PT": [[]], "Eta": [[]], "Phi": [[]], "Charge": [[]]}
    towers = {k: t1[k] + t3[k] + t2[k] for k in t1}
    muons = {k: m1[k] + m3[k] + m2[k] for k in m1}
    build = _image(delphes_file(towers, muons), read_chunk_entries=2)
    assert build.images.shape[0] == 2
    assert build.images[0].sum() == 1.0 and build.images[1].sum() == 5.0
    assert build.statistics.events_read == 3 and build.statistics.events_selected == 2


def test_ecal_and_hcal_quantities(delphes_file):
    eta = 1.2
    towers = {"ET": [[8.0]], "Eta": [[eta]], "Phi": [[0.05]],
              "Eem": [[3.0 * np.cosh(eta)]], "Ehad": [[5.0 * np.cosh(eta)]]}
    muons = {"PT": [[11.0]], "Eta": [[eta]], "Phi": [[0.0]], "Charge": [[1]]}
    path = delphes_file(towers, muons)
    for quantity, value in (("et", 8.0), ("et_ecal", 3.0), ("et_hcal", 5.0)):
        image = _image(path, quantity=quantity).images[0]
        assert image.sum() == pytest.approx(value, rel=1e-6)
        assert image[16, 18] == pytest.approx(value, rel=1e-6)


def test_all_muons_mode_centres_each_image_on_its_muon(delphes_file):
    towers = {"ET": [[1.0, 2.0, 4.0]], "Eta": [[0.01, 1.51, 1.51]], "Phi": [[0.01, 2.01, -2.0]]}
    muons = {"PT": [[14.0, 11.0, 30.0]], "Eta": [[0.0, 1.5, 1.5]], "Phi": [[0.0, 2.0, -2.0]], "Charge": [[1, -1, 1]]}
    path = delphes_file(towers, muons)
    lead = _image(path)
    assert lead.images.shape[0] == 1 and lead.muon_pt.tolist() == [14.0] and lead.images[0].sum() == 1.0
    every = _image(path, muons_per_event="all")
    assert every.muon_pt.tolist() == [14.0, 11.0]  # the 30 GeV muon is outside the window
    assert [im.sum() for im in every.images] == [1.0, 2.0]
    assert every.statistics.events_selected == 1 and every.statistics.muons_selected == 2


def test_images_without_muons_are_empty():
    z = np.zeros(2, np.float32)
    towers = extract_towers(np.array([0, 2]), z, z, np.ones(2, np.float32), np.ones(2, np.float32), z,
                            np.zeros((2, 4), np.float32),
                            np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.float32),
                            tower_shape="point")
    assert len(towers) == 0 and towers.n_towers == 0
    assert render_towers(towers, tower_shape="point").shape == (0, 32, 32)

"""Isolation (paper eq. 3) of hand-made images equals hand-computed values."""
from __future__ import annotations

import numpy as np
import pytest

from analysis.errors import AnalysisError
from analysis.geometry import cone_mask, pixel_centres
from analysis.inputs import load_images
from analysis.isolation import cone_et, isolation
from imaging.h5schema import write_image_file


def test_pixel_centres_are_midpoints_of_the_file_grid() -> None:
    # 4 pixels over [-0.4, 0.4]: edges -0.4, -0.2, 0, 0.2, 0.4
    np.testing.assert_allclose(pixel_centres(4, 0.4), [-0.3, -0.1, 0.1, 0.3])
    np.testing.assert_allclose(pixel_centres(32, 0.4)[[0, 16, 31]], [-0.3875, 0.0125, 0.3875])


def test_four_pixel_image_by_hand() -> None:
    # Central pixels have dR = hypot(0.1, 0.1) = 0.141 < 0.2; the others >= hypot(0.1, 0.3) = 0.316.
    assert cone_mask(4, 0.4, 0.2).sum() == 4
    img = np.zeros((2, 4, 4), np.float32)
    img[0] = 1.0                          # every pixel 1 GeV -> 4 GeV in the cone
    img[1, 1, 1], img[1, 2, 2] = 2.0, 0.5  # inside
    img[1, 0, 0], img[1, 1, 3] = 3.0, 7.0  # outside (corner; dR = hypot(0.1, 0.3))
    iso = isolation(img, np.array([10.0, 12.5]), radius=0.4, cone=0.2)
    np.testing.assert_allclose(iso, [4.0 / 10.0, 2.5 / 12.5])


def test_32_pixel_image_cone_boundary_by_hand() -> None:
    # pixel size 0.025; pixel 16 has centre +0.0125. Offsets along eta, phi fixed at index 16:
    #   index 23: hypot(0.1875, 0.0125) = 0.1879 < 0.2 (in); index 24: 0.2125 (out)
    #   diagonal (21, 21): hypot(0.1375, 0.1375) = 0.1945 (in); (21, 22): hypot(0.1375, 0.1625) = 0.2129 (out)
    img = np.zeros((1, 32, 32), np.float32)
    img[0, 23, 16] = 1.0
    img[0, 24, 16] = 10.0
    img[0, 21, 21] = 2.0
    img[0, 21, 22] = 20.0
    img[0, 8, 15] = 4.0   # mirror of index 23 on the negative side: centre -0.1875 (in)
    np.testing.assert_allclose(cone_et(img, 0.4, 0.2), [7.0])
    np.testing.assert_allclose(isolation(img, np.array([14.0]), 0.4, 0.2), [0.5])


def test_isolation_symmetries_and_scaling() -> None:
    rng = np.random.default_rng(1)
    img = rng.exponential(1.0, (5, 32, 32)).astype(np.float32) * (rng.random((5, 32, 32)) < 0.1)
    pt = rng.uniform(10, 15, 5)
    base = isolation(img, pt, 0.4)
    np.testing.assert_allclose(isolation(np.rot90(img, axes=(1, 2)).copy(), pt, 0.4), base, rtol=1e-6)
    np.testing.assert_allclose(isolation(img[:, ::-1, :].copy(), pt, 0.4), base, rtol=1e-6)
    np.testing.assert_allclose(isolation(img, 2 * pt, 0.4), base / 2, rtol=1e-6)
    # a wider cone can only add (non-negative) energy
    assert np.all(isolation(img, pt, 0.4, cone=0.3) >= base)


def test_generated_file_uses_its_stored_pt(tmp_path) -> None:
    img = np.zeros((3, 4, 4), np.float32)
    img[:, 1, 2] = 6.0  # inside the cone
    path = write_image_file(tmp_path / "gen.h5", img, np.full(3, 12.0), sample="signal", radius=0.4, kind="generated")
    data = load_images(path, sample="signal", label="m").data
    np.testing.assert_allclose(isolation(data.images, data.muon_pt, data.radius), [0.5, 0.5, 0.5])


@pytest.mark.parametrize("bad_pt", [0.0, -3.0, np.nan])
def test_bad_pt_is_a_clear_error(bad_pt: float) -> None:
    img = np.ones((2, 4, 4), np.float32)
    with pytest.raises(AnalysisError, match=r"gen\.h5: /muon/pt has 1 non-positive or NaN.*index 1"):
        isolation(img, np.array([10.0, bad_pt]), 0.4, source="gen.h5")


def test_bad_shapes_are_clear_errors() -> None:
    with pytest.raises(AnalysisError, match="shape"):
        cone_et(np.ones((2, 4, 5)), 0.4)
    with pytest.raises(AnalysisError, match="2 muon pT values for 3 images"):
        isolation(np.ones((3, 4, 4)), np.ones(2), 0.4)

"""Towers behind the images: render_towers on hand-made towers, which towers are stored, the /towers contract."""
from __future__ import annotations

import h5py
import numpy as np
import pytest
from imaging_cases import CENTRES

import imaging.towers as towers_module
from imaging import ImagingConfig, build_images, write_images
from imaging.h5schema import SCHEMA_VERSION, ImageFileError, file_has_towers, read_image_file, write_image_file
from imaging.synthetic import random_delphes_events, random_towers
from imaging.towers import (
    FEATURES,
    TowerSet,
    contributing_towers,
    empty_towers,
    extract_towers,
    pad_towers,
    render_towers,
)

F32 = np.float32


def _towers(rows, offsets=None):
    """TowerSet from rows (deta, dphi, et_ecal, et_hcal, deta_lo, deta_hi, dphi_lo, dphi_hi); one image by default."""
    a = np.asarray(rows, dtype=F32).reshape(-1, 8)
    off = np.array([0, len(a)] if offsets is None else offsets, dtype=np.int64)
    return TowerSet(off, a[:, 0], a[:, 1], a[:, 2], a[:, 3], a[:, 4:])


def _point(deta, dphi, ecal, hcal=0.0):
    return (deta, dphi, ecal, hcal, deta, deta, dphi, dphi)


# ---------------------------------------------------------------- render_towers on hand-made towers
def test_a_tower_lands_in_its_pixel_and_quantities_pick_parts():
    towers = _towers([_point(CENTRES[20], CENTRES[5], 3.0), _point(CENTRES[20], CENTRES[5], 0.0, 1.5),
                      _point(0.41, 0.0, 9.0)])  # same pixel, ECal + HCal; then dR = 0.41: outside
    expected = np.zeros((32, 32), F32)
    expected[20, 5] = 4.5  # axis 1 = d-eta, axis 2 = d-phi
    np.testing.assert_array_equal(render_towers(towers, tower_shape="point")[0], expected)
    assert render_towers(towers, tower_shape="point", quantity="et_ecal")[0, 20, 5] == 3.0
    assert render_towers(towers, tower_shape="point", quantity="et_hcal")[0, 20, 5] == 1.5
    assert render_towers(towers, tower_shape="point", quantity="et_hcal").sum() == 1.5


def test_a_cell_is_split_over_the_pixels_it_covers():
    whole = _towers([(0.02, 0.02, 0.0, 8.0, 0.0, 0.05, 0.0, 0.05)])  # on pixel edges: 4 pixels, a quarter each
    expected = np.zeros((32, 32), F32)
    expected[16:18, 16:18] = 2.0
    np.testing.assert_allclose(render_towers(whole, tower_shape="cell")[0], expected, atol=1e-6)
    partial = _towers([(0.03, 0.01, 10.0, 0.0, 0.01, 0.06, 0.0, 0.025)])  # 0.015, 0.025, 0.01 of 0.05 in eta
    img = render_towers(partial, tower_shape="cell")[0]
    nz = {tuple(int(k) for k in i): float(img[tuple(i)]) for i in np.argwhere(img)}
    assert nz == pytest.approx({(16, 16): 3.0, (17, 16): 5.0, (18, 16): 2.0}, abs=1e-5)


def test_mixed_draws_the_ecal_part_as_a_point_and_the_hcal_part_over_the_cell():
    towers = _towers([(0.06, -0.16, 3.0, 4.0, 0.0, 0.1, -0.2, -0.1)])  # an HCal cell of 4 x 4 whole pixels
    img = render_towers(towers, tower_shape="mixed")[0]
    assert img[18, 9] == pytest.approx(3.0 + 0.25, rel=1e-6)  # the ECal point on top of its cell share
    spread = img.copy()
    spread[18, 9] -= 3.0
    np.testing.assert_allclose(spread[16:20, 8:12], 0.25, rtol=1e-5)
    assert np.count_nonzero(img) == 16
    ecal = render_towers(towers, tower_shape="mixed", quantity="et_ecal")
    hcal = render_towers(towers, tower_shape="mixed", quantity="et_hcal")
    assert np.count_nonzero(ecal) == 1 and np.count_nonzero(hcal) == 16
    np.testing.assert_array_equal(ecal + hcal, img[None])  # each part drawn once, the same way


def test_phi_wraps_around_pi_from_delphes_coordinates_to_pixels():
    """Muon just below +pi; a tower and its cell just above -pi sit at d-phi +0.01 .. +0.06."""
    cells = np.array([[0.0, 0.025, -np.pi, -np.pi + 0.05]], F32)
    towers = extract_towers(np.array([0, 1]), F32([0.01]), F32([-np.pi + 0.03]), F32([10.0]), F32([0.0]),
                            F32([10.0]), cells, np.array([0]), F32([0.0]), F32([np.pi - 0.01]), tower_shape="mixed")
    assert towers.n_towers == 1
    assert towers.dphi[0] == pytest.approx(0.04, abs=1e-6)
    np.testing.assert_allclose(towers.edges[0], [0.0, 0.025, 0.01, 0.06], atol=1e-6)
    img = render_towers(towers, tower_shape="mixed")[0]
    assert img[16, 16:19] == pytest.approx([3.0, 5.0, 2.0], abs=1e-3) and img.sum() == pytest.approx(10.0, rel=1e-5)


def test_empty_images_render_to_zero():
    towers = empty_towers(3)
    assert len(towers) == 3 and towers.n_towers == 0
    for shape in ("point", "cell", "mixed"):
        img = render_towers(towers, tower_shape=shape)
        assert img.shape == (3, 32, 32) and not img.any()
    with pytest.raises(ValueError, match="tower_shape"):
        render_towers(towers, tower_shape="blob")


@pytest.mark.parametrize("shape", ["point", "cell", "mixed"])
def test_rendering_in_blocks_of_images_gives_the_same_images(monkeypatch, shape):
    towers = random_towers(50, seed=9)
    whole = render_towers(towers, tower_shape=shape)
    monkeypatch.setattr(towers_module, "RENDER_BLOCK", 7)
    np.testing.assert_array_equal(render_towers(towers, tower_shape=shape), whole)
    assert whole.any()


# ---------------------------------------------------------------- which towers are stored
@pytest.mark.parametrize("shape", ["point", "cell", "mixed"])
def test_contributing_towers_are_those_that_put_et_in_their_image(shape):
    """Each tower rendered on its own: non-zero exactly when contributing_towers says it contributes."""
    towers = random_towers(300, seed=4)
    alone = TowerSet(np.arange(towers.n_towers + 1), towers.deta, towers.dphi, towers.et_ecal, towers.et_hcal,
                     towers.edges)
    drawn = render_towers(alone, tower_shape=shape).any(axis=(1, 2))
    keep = contributing_towers(towers, tower_shape=shape)
    np.testing.assert_array_equal(keep, drawn)
    assert 0.3 < keep.mean() < 1.0  # some towers do not reach the disc: the test sees both kinds
    kept = towers.take(np.ones(len(towers), bool))
    assert kept.n_towers == towers.n_towers
    # dropping the others changes no image, bit for bit
    img = render_towers(towers, tower_shape=shape)
    rows = np.flatnonzero(keep)
    only = TowerSet(np.r_[0, np.cumsum(np.bincount(towers.image_index()[rows], minlength=len(towers)))],
                    towers.deta[rows], towers.dphi[rows], towers.et_ecal[rows], towers.et_hcal[rows],
                    towers.edges[rows])
    np.testing.assert_array_equal(render_towers(only, tower_shape=shape), img)


@pytest.mark.parametrize("shape", ["point", "mixed"])
def test_extracted_towers_are_relative_to_their_muon_and_in_delphes_order(shape):
    """Towers of two events, the second with two muons (muons_per_event all): each image gets its own towers."""
    # event 0: muon at (0.5, 1.0); event 1: muons at (-1.0, 3.1) and (1.2, -2.0)
    tower_eta = F32([0.52, 0.45, 2.0, -1.05, 1.25, -0.98])
    tower_phi = F32([1.01, 1.2, 1.0, -3.12, -2.1, 3.05])
    cells = np.column_stack([tower_eta - 0.01, tower_eta + 0.01, tower_phi - 0.01, tower_phi + 0.01]).astype(F32)
    et = F32([1, 2, 4, 8, 16, 32])
    towers = extract_towers(np.array([0, 3, 6]), tower_eta, tower_phi, et, et, np.zeros(6, F32), cells,
                            np.array([0, 1, 1]), F32([0.5, -1.0, 1.2]), F32([1.0, 3.1, -2.0]), tower_shape=shape)
    assert towers.counts().tolist() == [2, 2, 1] and towers.problems() == []
    np.testing.assert_array_equal(towers.et_ecal, F32([1, 2, 8, 32, 16]))  # Delphes order within each image
    np.testing.assert_allclose(towers.deta, [0.02, -0.05, -0.05, 0.02, 0.05], atol=1e-6)
    np.testing.assert_allclose(towers.dphi, [0.01, 0.2, 2 * np.pi - 6.22, -0.05, -0.1], atol=1e-5)
    np.testing.assert_allclose(towers.edges[:, 1] - towers.edges[:, 0], 0.02, atol=1e-6)
    np.testing.assert_allclose(towers.edges[:, 2], towers.dphi - 0.01, atol=1e-6)  # wrapped like the position


# ---------------------------------------------------------------- TowerSet helpers
def test_take_concatenate_features_and_padding():
    towers = random_towers(20, seed=2)
    back = TowerSet.concatenate([towers.take(slice(0, 7)), towers.take(np.arange(7, 20))])
    for name in ("offsets", "deta", "dphi", "et_ecal", "et_hcal", "edges"):
        np.testing.assert_array_equal(getattr(back, name), getattr(towers, name))
    picked = towers.take([5, 2])
    f = towers.features()
    assert f.shape == (towers.n_towers, len(FEATURES)) and f.dtype == F32
    np.testing.assert_array_equal(picked.features(), np.concatenate([f[towers.offsets[5]:towers.offsets[6]],
                                                                     f[towers.offsets[2]:towers.offsets[3]]]))
    padded, mask = pad_towers(towers)
    assert padded.shape == (20, towers.counts().max(), 8)
    np.testing.assert_array_equal(mask.sum(1), towers.counts())
    np.testing.assert_array_equal(padded[mask], f)  # rows in image order, tower order within
    cut, cut_mask = pad_towers(towers, max_towers=3)
    np.testing.assert_array_equal(cut_mask.sum(1), np.minimum(towers.counts(), 3))


# ---------------------------------------------------------------- the file contract
def _write(path, towers, n=None, **kwargs):
    n = len(towers) if n is None else n
    images = render_towers(towers, tower_shape="mixed")[:n] if len(towers) == n else np.zeros((n, 32, 32), F32)
    return write_image_file(path, images, np.full(n, 12.0), sample="signal", towers=towers, **kwargs)


def test_towers_round_trip_and_are_read_only_on_request(tmp_path):
    towers = random_towers(50, seed=3)
    path = _write(tmp_path / "images.h5", towers)
    assert file_has_towers(path)
    with h5py.File(path, "r") as f:
        assert f.attrs["schema_version"] == SCHEMA_VERSION == 2
        assert f["towers/offsets"].dtype == np.int64 and f["towers/edges"].shape == (towers.n_towers, 4)
        assert all(f[f"towers/{k}"].dtype == F32 for k in ("deta", "dphi", "et_ecal", "et_hcal", "edges"))
    assert read_image_file(path).towers is None  # default: images only
    data = read_image_file(path, towers=True)
    for name in ("offsets", "deta", "dphi", "et_ecal", "et_hcal", "edges"):
        np.testing.assert_array_equal(getattr(data.towers, name), getattr(towers, name))
    np.testing.assert_array_equal(render_towers(data.towers, tower_shape="mixed"), data.images)
    first = read_image_file(path, towers=True, max_images=7)
    assert len(first.towers) == 7 and first.towers.n_towers == towers.offsets[7]
    np.testing.assert_array_equal(first.towers.features(), towers.take(slice(0, 7)).features())


def test_files_without_towers_read_and_say_so_when_towers_are_asked_for(tmp_path):
    path = write_image_file(tmp_path / "gen.h5", np.zeros((3, 32, 32), F32), np.full(3, 12.0), sample="signal",
                            kind="generated")
    assert not file_has_towers(path) and read_image_file(path).towers is None
    with pytest.raises(ImageFileError, match=r"gen.h5: no '/towers' group \(schema_version 2"):
        read_image_file(path, towers=True)
    with h5py.File(path, "r+") as f:  # a version-1 file: same datasets, no /towers
        f.attrs["schema_version"] = 1
    assert len(read_image_file(path)) == 3
    with pytest.raises(ImageFileError, match="schema_version 1"):
        read_image_file(path, towers=True)
    with h5py.File(path, "r+") as f:
        f.attrs["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(ImageFileError, match="newer than this code reads"):
        read_image_file(path)


def _corrupt(path, edit):
    with h5py.File(path, "r+") as f:
        edit(f["towers"])
    return path


@pytest.mark.parametrize(("edit", "message"), [
    (lambda g: g["offsets"].__setitem__(3, 10**6), r"'/towers/offsets' decreases"),
    (lambda g: g["offsets"].__setitem__(-1, 5), r"'/towers/offsets' ends at 5 but there are \d+ towers"),
    (lambda g: g.__delitem__("et_hcal"), r"missing dataset '/towers/et_hcal'"),
    (lambda g: g["dphi"].__setitem__(2, np.nan), r"'/towers/dphi' contains NaN or inf"),
])
def test_bad_towers_name_the_file_and_the_dataset(tmp_path, edit, message):
    path = _corrupt(_write(tmp_path / "bad.h5", random_towers(10, seed=1)), edit)
    with pytest.raises(ImageFileError, match=rf"bad.h5: .*{message}"):
        read_image_file(path, towers=True)
    assert len(read_image_file(path)) == 10  # the images alone still read


def test_bad_offsets_shape_and_wrong_image_count_are_errors(tmp_path):
    towers = random_towers(10, seed=1)
    path = _write(tmp_path / "short.h5", towers)
    with h5py.File(path, "r+") as f:
        del f["towers/offsets"]
        f["towers/offsets"] = towers.offsets[:-1]
    with pytest.raises(ImageFileError, match=r"short.h5: '/towers/offsets' is int64 \(10,\), expected .*\(11,\)"):
        read_image_file(path, towers=True)
    with pytest.raises(ImageFileError, match="describes 10 images but there are 4"):
        _write(tmp_path / "n.h5", towers, n=4)
    assert not (tmp_path / "n.h5").exists()


def test_the_build_stores_towers_that_re_render_its_images(delphes_file, tmp_path):
    """Synthetic Delphes-schema file (no Tower.Edges: zero-size cells) -> images.h5 -> towers -> the same images."""
    path = delphes_file(*random_delphes_events(300, towers_per_event=200, seed=8))
    cfg = ImagingConfig(muons_per_event="all", read_chunk_entries=70)
    build = build_images([path], cfg, sample="background")
    assert build.towers.n_towers > len(build.muon_pt) > 100
    out = write_images(tmp_path / "images.h5", build, cfg, sample="background")
    data = read_image_file(out, towers=True)
    assert data.attrs["tower_shape"] == "point" and data.attrs["quantity"] == "et"
    again = render_towers(data.towers, tower_shape="point", npix=data.npix, radius=data.radius, quantity="et")
    assert np.array_equal(again, data.images) and data.images.any()
    np.testing.assert_array_equal(data.towers.edges[:, 0], data.towers.deta)  # no cells in the input

"""Real Pythia 8 -> real Delphes (stock CMS card, which writes Tower) -> imaging.

Pins that the reader accepts genuine Delphes output (TClonesArray split branches such as
`Tower/Tower.ET`, `Event.Weight` one entry per event) and that the columnar images equal an
independent per-muon computation with awkward + vector.
"""
from __future__ import annotations

import subprocess

import awkward as ak
import numpy as np
import pytest
import uproot
import vector

from imaging import ImagingConfig, build_images, write_images
from imaging.h5schema import read_image_file
from imaging.towers import render_towers

N_EVENTS = 120
DELPHES_SEED = 7
PYTHIA_SETTINGS = [  # Z'(20 GeV) -> mu mu, 13 TeV, like the signal sample (small and fast)
    "Beams:eCM = 13000", "NewGaugeBoson:ffbar2gmZZprime = on", "Zprime:gmZmode = 3",
    "32:m0 = 20", "32:onMode = off", "32:onIfAny = 13", "PhaseSpace:mHatMin = 15", "PhaseSpace:mHatMax = 25",
    "Random:setSeed = on", "Random:seed = 11", "Next:numberCount = 0", "Print:quiet = on",
]


def _write_hepmc2(path, n_events):
    """Pythia events to HepMC2 ASCII (what DelphesHepMC2 reads), via pyhepmc's from_hepevt."""
    pythia8 = pytest.importorskip("pythia8mc")
    pyhepmc = pytest.importorskip("pyhepmc")
    pythia = pythia8.Pythia("", False)
    for line in PYTHIA_SETTINGS:
        pythia.readString(line)
    assert pythia.init()
    with pyhepmc.io.WriterAsciiHepMC2(str(path)) as writer:
        written = 0
        while written < n_events:
            if not pythia.next():
                continue
            ev = pythia.event
            rows = [(p.id(), 1 if p.isFinal() else 2, p.px(), p.py(), p.pz(), p.e(), p.m(),
                     p.xProd(), p.yProd(), p.zProd(), p.tProd(), p.mother1(), p.mother2(),
                     p.daughter1(), p.daughter2()) for p in (ev[i] for i in range(1, ev.size()))]
            a = np.array(rows)
            g = pyhepmc.GenEvent()
            g.from_hepevt(event_number=written, px=a[:, 2], py=a[:, 3], pz=a[:, 4], en=a[:, 5], m=a[:, 6],
                          pid=a[:, 0].astype(int), status=a[:, 1].astype(int),
                          parents=a[:, 11:13].astype(int), children=a[:, 13:15].astype(int),
                          vx=a[:, 7], vy=a[:, 8], vz=a[:, 9], vt=a[:, 10])
            g.weights = [1.0]
            writer.write(g)
            written += 1


@pytest.fixture(scope="module")
def real_delphes_file(tmp_path_factory, delphes, seeded_stock_card):
    tmp = tmp_path_factory.mktemp("real_delphes")
    hepmc = tmp / "events.hepmc"
    _write_hepmc2(hepmc, N_EVENTS)
    # stock CMS card, seeded so that this fixture is the same file on every run, without the
    # (large) generator-particle branch
    card = seeded_stock_card(tmp / "card.tcl", seed=DELPHES_SEED, replace={
        "add Branch Delphes/allParticles Particle GenParticle": "# (Particle branch not needed)"})
    out = tmp / "chunk0.root"
    proc = subprocess.run([str(delphes / "bin" / "DelphesHepMC2"), str(card), str(out), str(hepmc)],
                          cwd=delphes, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return out


@pytest.mark.slow
def test_real_delphes_file_matches_an_independent_computation(real_delphes_file):
    tree = uproot.open(real_delphes_file)["Delphes"]
    assert "Tower/Tower.ET" in tree.keys() and tree.num_entries == N_EVENTS  # genuine nested layout
    cfg = ImagingConfig(muon_pt_min=3.0, muon_pt_max=60.0, read_chunk_entries=7)
    build = build_images([real_delphes_file], cfg, sample="signal")
    assert len(build.muon_pt) >= 5 and (build.weight == 1).all()
    assert build.images.sum() > 0

    # independent: awkward records + vector delta-R, one muon at a time (fine for a test)
    arrays = tree.arrays(["Tower.ET", "Tower.Eta", "Tower.Phi", "Muon.PT", "Muon.Eta", "Muon.Phi"])
    edges = np.linspace(-0.4, 0.4, 33)
    k = 0
    for event in range(N_EVENTS):
        pt = np.asarray(arrays["Muon.PT"][event])
        ok = np.flatnonzero((pt >= 3.0) & (pt <= 60.0) & (np.abs(np.asarray(arrays["Muon.Eta"][event])) <= 2.4))
        if ok.size == 0:
            continue
        lead = ok[np.argmax(pt[ok])]
        mu = vector.obj(pt=float(pt[lead]), eta=float(arrays["Muon.Eta"][event][lead]),
                        phi=float(arrays["Muon.Phi"][event][lead]))
        towers = vector.array({"pt": ak.to_numpy(arrays["Tower.ET"][event]),
                               "eta": ak.to_numpy(arrays["Tower.Eta"][event]),
                               "phi": ak.to_numpy(arrays["Tower.Phi"][event])})
        near = towers.deltaR(mu) < 0.4
        expected, _, _ = np.histogram2d(towers.eta[near] - mu.eta, towers.deltaphi(mu)[near],
                                        bins=[edges, edges], weights=towers.pt[near])
        assert build.muon_pt[k] == pytest.approx(mu.pt)
        np.testing.assert_allclose(build.images[k], expected, atol=1e-4)
        k += 1
    assert k == len(build.muon_pt)


@pytest.mark.slow
def test_real_delphes_cells_contain_their_towers_and_cell_images_keep_the_energy(real_delphes_file):
    """Tower.Edges is (eta_min, eta_max, phi_min, phi_max) around each tower; cell images spread, not lose, ET."""
    tree = uproot.open(real_delphes_file)["Delphes"]
    arrays = tree.arrays(["Tower.Eta", "Tower.Phi", "Tower.Edges[4]"])
    eta = ak.to_numpy(ak.flatten(arrays["Tower.Eta"]))
    phi = ak.to_numpy(ak.flatten(arrays["Tower.Phi"]))
    cell = ak.to_numpy(ak.flatten(arrays["Tower.Edges[4]"]))
    assert cell.shape == (eta.size, 4) and eta.size > 100
    tol = 1e-4
    assert np.all((cell[:, 0] - tol <= eta) & (eta <= cell[:, 1] + tol))
    assert np.all((cell[:, 2] - tol <= phi) & (phi <= cell[:, 3] + tol))

    point_cfg = ImagingConfig(muon_pt_min=3.0, muon_pt_max=60.0)
    cell_cfg = ImagingConfig(muon_pt_min=3.0, muon_pt_max=60.0, tower_shape="cell", read_chunk_entries=7)
    point = build_images([real_delphes_file], point_cfg, sample="signal").images
    spread = build_images([real_delphes_file], cell_cfg, sample="signal").images
    assert spread.shape == point.shape
    # a tower cell (0.087 x 0.087 in the CMS card) spans about 3.5 x 3.5 pixels, fewer where it
    # crosses the disc edge; without pile-up only a few towers lie within dR < 0.4 of a muon,
    # hence the 120 events (and the fixed Delphes seed: the same towers on every run)
    assert np.count_nonzero(spread) > 3 * np.count_nonzero(point) > 0
    # the same energy, up to cells crossing the disc edge (in either direction)
    assert spread.sum() == pytest.approx(point.sum(), rel=0.25)


@pytest.mark.slow
@pytest.mark.parametrize("shape", ["point", "mixed"])
def test_real_delphes_images_re_render_bit_for_bit_from_their_stored_towers(real_delphes_file, tmp_path, shape):
    """images.h5 from real Delphes output -> /towers -> render_towers == /images for every image (issue 22)."""
    cfg = ImagingConfig(muon_pt_min=3.0, muon_pt_max=60.0, tower_shape=shape, muons_per_event="all",
                        read_chunk_entries=7)
    build = build_images([real_delphes_file], cfg, sample="signal")
    path = write_images(tmp_path / "images.h5", build, cfg, sample="signal")
    data = read_image_file(path, towers=True)
    towers = data.towers
    # without pile-up few towers lie near a muon (4 point towers in 33 images with this seed)
    assert len(towers) == len(data) >= 5 and towers.n_towers >= 3 and data.images.any()
    assert data.attrs["tower_shape"] == shape and data.attrs["quantity"] == "et"
    again = render_towers(towers, tower_shape=shape, npix=data.npix, radius=data.radius, quantity="et")
    assert np.array_equal(again, data.images)  # bit for bit, every image
    widths = towers.edges[:, 1] - towers.edges[:, 0]
    assert np.all(widths > 0.01)  # real cells (the stock CMS card: 0.0174 ECal, 0.087 HCal in the barrel)
    inside = (towers.edges[:, 0] - 1e-4 <= towers.deta) & (towers.deta <= towers.edges[:, 1] + 1e-4)
    assert inside.all()  # each tower sits in its own cell, relative to the muon as well
    # the CMS card merges separate ECal and HCal towers: one part each, Tower.ET kept exactly in that part
    assert not np.any((towers.et_ecal > 0) & (towers.et_hcal > 0))
    if shape == "mixed":  # HCal towers whose cell reaches the disc are stored even if their point lies outside
        dr = np.hypot(towers.deta, towers.dphi)
        assert np.any((towers.et_hcal > 0) & (dr >= 0.4)) and not np.any((towers.et_hcal == 0) & (dr >= 0.4))
    else:
        assert np.all(np.hypot(towers.deta.astype(np.float64), towers.dphi.astype(np.float64)) < 0.4)

"""The set-up works: real Delphes runs, ROOT files read back, Pythia makes events."""
from __future__ import annotations

import math
import subprocess

import numpy as np
import pytest

DELPHES_EXECUTABLES = ["DelphesHepMC2", "DelphesHepMC3", "DelphesROOT", "hepmc2pileup", "root2pileup", "pileup2root"]


@pytest.mark.parametrize("name", DELPHES_EXECUTABLES)
def test_delphes_executable_prints_usage(delphes, name):
    exe = delphes / "bin" / name
    assert exe.exists(), f"{exe} missing from the Delphes install"
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert "Usage" in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def _write_dimuon_hepmc2(path, n_events: int, pt_gev: float) -> None:
    """n_events back-to-back mu+ mu- pairs (pT = pt_gev, eta = 0.5) in HepMC2 ASCII."""
    import pyhepmc

    mass = 0.10566
    eta = 0.5
    with pyhepmc.io.WriterAsciiHepMC2(str(path)) as writer:
        for i in range(n_events):
            evt = pyhepmc.GenEvent(pyhepmc.Units.GEV, pyhepmc.Units.MM)
            evt.event_number = i
            vtx = pyhepmc.GenVertex()
            for pz in (6500.0, -6500.0):
                vtx.add_particle_in(pyhepmc.GenParticle(pyhepmc.FourVector(0, 0, pz, 6500.0), 2212, 4))
            for sign, pid in ((1, 13), (-1, -13)):
                px, pz = sign * pt_gev, sign * pt_gev * math.sinh(eta)
                e = math.sqrt(px * px + pz * pz + mass * mass)
                vtx.add_particle_out(pyhepmc.GenParticle(pyhepmc.FourVector(px, 0.0, pz, e), pid, 1))
            evt.add_vertex(vtx)
            writer.write(evt)


@pytest.mark.slow
def test_delphes_simulates_hepmc2_events_and_uproot_reads_them(delphes, seeded_stock_card, tmp_path):
    """Real DelphesHepMC2 with a stock card: every event in comes out, muons reconstructed."""
    import uproot

    hepmc = tmp_path / "dimuon.hepmc"
    _write_dimuon_hepmc2(hepmc, n_events=5, pt_gev=30.0)
    out = tmp_path / "delphes.root"
    card = seeded_stock_card(tmp_path / "card.tcl", seed=3)
    proc = subprocess.run(
        [str(delphes / "bin" / "DelphesHepMC2"), str(card), str(out), str(hepmc)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    tree = uproot.open(out)["Delphes"]
    assert tree.num_entries == 5
    muon_pt = tree["Muon.PT"].array()
    # CMS muon efficiency is ~95% at 30 GeV and |eta| 0.5: nearly all 10 muons are found,
    # with the resolution of a few percent.
    found = np.concatenate([np.asarray(x) for x in muon_pt])
    assert len(found) >= 8
    assert np.all(np.abs(found - 30.0) < 3.0), found


def test_uproot_roundtrip(tmp_path):
    import awkward as ak
    import uproot

    jagged = ak.Array([[1.0, 2.0], [], [3.0]])
    path = tmp_path / "roundtrip.root"
    with uproot.recreate(path) as f:
        f["Delphes"] = {"Muon": ak.zip({"PT": jagged})}
    with uproot.open(path) as f:
        back = f["Delphes"]["Muon.PT"].array()  # same branch naming as Delphes
    assert ak.to_list(back) == [[1.0, 2.0], [], [3.0]]


def test_pythia_generates_an_event():
    import pythia8mc

    pythia = pythia8mc.Pythia("", False)
    for setting in ("Beams:eCM = 13000.", "SoftQCD:nonDiffractive = on", "Random:setSeed = on",
                    "Random:seed = 7", "Next:numberCount = 0", "PartonLevel:MPI = off",
                    "HadronLevel:all = off"):
        assert pythia.readString(setting), setting
    assert pythia.init()
    assert pythia.next()
    n_final = sum(1 for i in range(pythia.event.size()) if pythia.event[i].isFinal())
    assert n_final >= 2


def test_torch_is_usable():
    import torch

    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(x @ torch.eye(4), x)

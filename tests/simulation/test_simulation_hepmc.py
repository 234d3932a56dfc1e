"""HepMC2 records written from Pythia batches: nothing a detector needs is lost."""
from __future__ import annotations

import awkward as ak
import numpy as np
import pyhepmc
import pytest

from simulation.generation import generate_chunk
from simulation.hepmc_writer import HepMC2Sink, hepevt_columns
from simulation.muon_filter import MuonWindow, passes_filter
from simulation.pythia_setup import make_pythia, process_cards

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def signal_batch():
    pythia = make_pythia(process_cards("signal"), 4321)
    return pythia.nextBatch(12)


def final_state(prt) -> list[np.ndarray]:
    """Per event: sorted (pid, px) rows of Pythia's final-state particles."""
    fin = prt[prt.status > 0]
    return [np.array(sorted(zip(ids, pxs, strict=True)))
            for ids, pxs in zip(ak.to_list(fin.id), ak.to_list(fin.p.px), strict=True)]


def test_hepmc2_round_trip_keeps_every_final_particle(tmp_path, signal_batch):
    path = tmp_path / "events.hepmc"
    sink = HepMC2Sink(str(path))
    sink.write_batch(hepevt_columns(signal_batch.prt), np.full(len(signal_batch), 1.0))
    sink.close()
    expected = final_state(signal_batch.prt)
    with pyhepmc.open(path) as f:
        events = list(f)
    assert len(events) == len(signal_batch) == sink.n_written  # events in == events out
    for ev, exp in zip(events, expected, strict=True):
        got = np.array(sorted((p.pid, p.momentum.px) for p in ev.particles if p.status == 1))
        np.testing.assert_allclose(got, exp, rtol=1e-12, atol=1e-12)
        # every particle hangs from a vertex (an orphan would be dropped by readers)
        assert all(p.production_vertex is not None for p in ev.particles if p.status != 4)
        assert sum(p.status == 4 for p in ev.particles) == 2
        assert ev.weights[0] == 1.0


def test_pruned_record_is_smaller_and_keeps_decay_vertices(signal_batch):
    prt = signal_batch.prt
    pruned = hepevt_columns(prt)
    n_pythia = int(ak.sum(ak.num(prt))) - len(prt)  # without the system lines
    assert len(pruned.px) < 0.7 * n_pythia
    assert (pruned.status == 1).sum() == ak.sum(prt.status > 0)
    # final particles keep their production vertices (displaced B, K0S, Lambda, ... decays)
    fin = prt[prt.status > 0]
    vprod = ak.fill_none(fin.vProd, {"px": 0.0, "py": 0.0, "pz": 0.0, "e": 0.0})
    expected = np.sort(np.stack([ak.to_numpy(ak.flatten(x)) for x in (fin.p.px, vprod.px, vprod.pz)], 1), axis=0)
    final = pruned.status == 1
    got = np.sort(np.stack([pruned.px[final], pruned.vx[final], pruned.vz[final]], 1), axis=0)
    np.testing.assert_array_equal(got, expected)
    assert np.count_nonzero(got[:, 1]) > 0


def test_filter_matches_its_definition(signal_batch):
    window = MuonWindow(9.0, 16.0, 2.5)
    prt = signal_batch.prt
    mask = passes_filter(prt, window)
    for i, ok in enumerate(mask):  # independent per-particle check of the columnar filter
        muons = [(np.hypot(p["p"]["px"], p["p"]["py"]), p["p"]) for p in ak.to_list(prt[i])
                 if p["status"] > 0 and abs(p["id"]) == 13]
        inside = [pt for pt, p in muons
                  if 9.0 <= pt <= 16.0 and abs(np.arcsinh(p["pz"] / pt)) < 2.5]
        assert ok == bool(inside)


def test_background_without_forced_decays_works(tmp_path):
    """Unbiased b-hadron decays (force_muonic_b_decays off): still fills, at a lower filter efficiency."""
    path = tmp_path / "bb.hepmc"
    sink = HepMC2Sink(str(path))
    stats = generate_chunk("background", 2, 777, sink, "bb unforced", force_muonic_b_decays=False, batch_size=200)
    sink.close()
    assert stats.kept == 2 and stats.generated > 2
    assert "force_b_muonic.cmnd" not in stats.settings["cards"]
    with pyhepmc.open(path) as f:
        for ev in f:
            muons = [p for p in ev.particles if p.status == 1 and abs(p.pid) == 13]
            assert any(9.0 <= p.momentum.pt() <= 16.0 and abs(p.momentum.eta()) < 2.5 for p in muons)

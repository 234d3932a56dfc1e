"""muon_filter.awk: the generator-level muon window on HepMC2 streams, as the native filter."""
from __future__ import annotations

import json
import math
import subprocess

import numpy as np
import pyhepmc
import pytest

from simulation.container.cards import CARDS_DIR
from simulation.muon_filter import MuonWindow

AWK = CARDS_DIR.parent / "container" / "muon_filter.awk"
WINDOW = MuonWindow()  # the native default: pT 9-16 GeV, |eta| < 2.5


def _event(number, muons, units=pyhepmc.Units.GEV):
    """A HepMC2-writable event: two beams -> one vertex -> a pion and the given muons.

    `muons` holds (pT GeV, eta, status) per muon."""
    scale = 1000.0 if units == pyhepmc.Units.MEV else 1.0
    rows = [(2212, 4, 0, 0, 6500.0), (2212, 4, 0, 0, -6500.0), (211, 1, 3.0, 0.5, None)]
    rows += [(13, status, pt, eta, None) for pt, eta, status in muons]
    px, py, pz, e, m, pid, st = [], [], [], [], [], [], []
    for ident, status, pt_or_e, eta_or_pz, beam_pz in rows:
        if beam_pz is not None:
            mom = (0.0, 0.0, beam_pz, abs(beam_pz))
            mass = 0.938
        else:
            pt, eta = pt_or_e, eta_or_pz
            pzv = pt * math.sinh(eta)
            mass = 0.105 if ident == 13 else 0.1396
            mom = (pt, 0.0, pzv, math.sqrt(pt * pt + pzv * pzv + mass * mass))
        for column, value in zip((px, py, pz, e, m), (*mom, mass), strict=True):
            column.append(value * scale)
        pid.append(ident)
        st.append(status)
    n = len(rows)
    parents = np.array([[0, 0], [0, 0]] + [[1, 2]] * (n - 2), dtype=np.int32)
    event = pyhepmc.GenEvent(units, pyhepmc.Units.MM)
    event.from_hepevt(number, np.array(px), np.array(py), np.array(pz), np.array(e), np.array(m),
                      np.array(pid, dtype=np.int32), np.array(st, dtype=np.int32), parents=parents)
    return event


EVENTS = [  # (muons, kept by the native window?)
    ([(12.0, 0.3, 1)], True),
    ([(20.0, 0.3, 1)], False),                 # pT above the window
    ([(8.5, 0.3, 1)], False),                  # pT below
    ([(12.0, 2.6, 1)], False),                 # outside |eta| < 2.5
    ([(12.0, -2.4, 1)], True),
    ([(12.0, 0.3, 2)], False),                 # not final state (decayed)
    ([(5.0, 0.0, 1), (15.5, -1.0, 1)], True),  # the second muon is in the window
    ([], False),
]


def _write(path, events, units=pyhepmc.Units.GEV):
    with pyhepmc.io.WriterAsciiHepMC2(str(path)) as writer:
        for i, (muons, _) in enumerate(events):
            writer.write(_event(i, muons, units))


def _run_awk(src, tmp_path, window=WINDOW):
    counts = tmp_path / "counts.json"
    proc = subprocess.run(["awk", "-f", str(AWK), "-v", f"ptmin={window.pt_min_gev}",
                           "-v", f"ptmax={window.pt_max_gev}", "-v", f"etamax={window.abs_eta_max}",
                           "-v", f"counts={counts}", str(src)],
                          capture_output=True, text=True, timeout=60)
    return proc, counts


@pytest.mark.parametrize("units", [pyhepmc.Units.GEV, pyhepmc.Units.MEV])
def test_keeps_exactly_the_events_with_a_final_muon_in_the_window(tmp_path, units):
    src = tmp_path / "in.hepmc"
    _write(src, EVENTS, units)
    proc, counts = _run_awk(src, tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "out.hepmc"
    out.write_text(proc.stdout)
    with pyhepmc.open(str(out)) as reader:
        kept_numbers = [event.event_number for event in reader]
    assert kept_numbers == [i for i, (_, keep) in enumerate(EVENTS) if keep]
    assert json.loads(counts.read_text())["generation"] == {"generated": len(EVENTS), "kept": sum(k for _, k in EVENTS)}
    # kept events are copied unchanged (same particles and momenta)
    with pyhepmc.open(str(out)) as reader:
        first = next(iter(reader))
    scale = 1000 if units == pyhepmc.Units.MEV else 1
    assert len(first.particles) == 4 and first.particles[3].momentum.pt() == pytest.approx(12.0 * scale, rel=1e-6)


def test_truncated_or_foreign_input_fails_with_a_message(tmp_path):
    src = tmp_path / "in.hepmc"
    _write(src, EVENTS)
    lines = src.read_text().splitlines()
    truncated = tmp_path / "truncated.hepmc"
    truncated.write_text("\n".join(lines[: len(lines) // 2]) + "\n")
    proc, counts = _run_awk(truncated, tmp_path)
    assert proc.returncode == 3 and "truncated" in proc.stderr and not counts.exists()
    hepmc3 = tmp_path / "in3.hepmc"
    with pyhepmc.io.WriterAscii(str(hepmc3)) as writer:
        writer.write(_event(0, [(12.0, 0.3, 1)]))
    proc, _ = _run_awk(hepmc3, tmp_path)
    assert proc.returncode == 3 and "HepMC2" in proc.stderr

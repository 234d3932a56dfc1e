"""Pythia batches (awkward, from Pythia.nextBatch) -> HepMC2 ASCII events via pyhepmc.

HepMC2 because DelphesHepMC2 reads it faithfully (a HepMC3 record converted from Pythia's
full history with from_hepevt was misread by DelphesHepMC3: events merged).

The record is pruned to what a detector simulation uses: the beams, the hard process,
every hadron-level particle (primary hadrons, decayed hadrons/taus and their products,
with their displaced production vertices) and every final-state particle. Parton-shower,
MPI and string partons (about half of Pythia's record) are dropped; particles whose
mother was dropped hang from the beams. Delphes only needs the final state (and the
dropped partons only for jet flavour/GenParticle branches this pipeline does not
write), so the detector response is unchanged while writing and reading cost halves.
Pythia's full history is deliberately not offered: converted with from_hepevt it lost
final-state particles (Pythia's mother ranges do not map onto HepMC vertices one to one),
which tests/simulation/test_simulation_hepmc.py would catch for the pruned record.
All array work is columnar over the batch; the per-event loop only hands slices to C++.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import IO

import awkward as ak
import numpy as np

from .errors import SimulationError


@dataclass
class HepevtColumns:
    """Flat per-particle arrays of a batch (pruned record) and per-event offsets into them."""

    offsets: np.ndarray  # (n_events + 1,) int64
    px: np.ndarray  # GeV
    py: np.ndarray
    pz: np.ndarray
    e: np.ndarray
    m: np.ndarray
    pid: np.ndarray  # int32
    status: np.ndarray  # int32, HepMC convention: 1 final, 2 decayed, 4 beam, else |Pythia status|
    parents: np.ndarray  # (n, 2) int32, 1-based within the event, (0, 0) = none
    vx: np.ndarray  # mm
    vy: np.ndarray
    vz: np.ndarray
    vt: np.ndarray  # mm/c


def _flat(x: ak.Array) -> np.ndarray:
    return ak.to_numpy(ak.flatten(x, axis=1))


def hepevt_columns(prt: ak.Array) -> HepevtColumns:
    """HEPEVT-like flat arrays for `prt` (nextBatch(...).prt, entry 0 = Pythia's system line)."""
    n_per_event = ak.to_numpy(ak.num(prt, axis=1)).astype(np.int64)
    start = np.concatenate([[0], np.cumsum(n_per_event)[:-1]])  # global index of entry 0
    status = _flat(prt.status).astype(np.int32)
    m1 = _flat(prt.mother1).astype(np.int64)
    m2 = _flat(prt.mother2).astype(np.int64)
    event_of = np.repeat(np.arange(len(n_per_event)), n_per_event)
    local = np.arange(len(status)) - start[event_of]

    abs_st = np.abs(status)
    keep = (local > 0) & ((abs_st == 11) | (abs_st == 12) | ((abs_st >= 21) & (abs_st <= 29))
                          | (abs_st >= 81) | (status > 0))
    # 1-based index of each kept particle inside its event's pruned record
    kept_before = np.cumsum(keep) - keep
    new_index = (kept_before - np.repeat(kept_before[start], n_per_event) + 1) * keep

    g1 = start[event_of] + m1  # global index of mother1 (own event)
    g2 = start[event_of] + np.where(m2 > 0, m2, m1)
    mother_kept = keep[g1] & keep[g2] & (m1 > 0)
    contiguous = (new_index[g2] - new_index[g1]) == (np.where(m2 > 0, m2, m1) - m1)
    own_range = mother_kept & contiguous & ((m2 == 0) | (m2 >= m1)) & (m1 > 2)
    parents = np.where(own_range[:, None], np.stack([new_index[g1], new_index[g2]], axis=1), 0)
    is_beam = (abs_st == 12) | (abs_st == 11)
    orphan = ~own_range & ~is_beam & (m1 > 0)
    # beams are entries 1 and 2 of every pruned record; orphans come from both
    parents[orphan] = (1, 2)

    hep_status = np.where(status > 0, 1, np.where(is_beam, 4, np.where(status <= -81, 2, abs_st))).astype(np.int32)
    vprod = ak.fill_none(prt.vProd, {"px": 0.0, "py": 0.0, "pz": 0.0, "e": 0.0})
    kept_per_event = np.add.reduceat(keep.astype(np.int64), start) if len(start) else np.zeros(0, np.int64)
    offsets = np.concatenate([[0], np.cumsum(kept_per_event)])
    return HepevtColumns(
        offsets=offsets,
        px=_flat(prt.p.px)[keep], py=_flat(prt.p.py)[keep], pz=_flat(prt.p.pz)[keep], e=_flat(prt.p.e)[keep],
        m=_flat(prt.m)[keep], pid=_flat(prt.id).astype(np.int32)[keep], status=hep_status[keep],
        parents=np.ascontiguousarray(parents[keep], dtype=np.int32),
        vx=_flat(vprod.px)[keep], vy=_flat(vprod.py)[keep], vz=_flat(vprod.pz)[keep], vt=_flat(vprod.e)[keep],
    )


class HepMC2Sink:
    """Writes events to a HepMC2 ASCII file path or binary stream (e.g. Delphes' stdin)."""

    def __init__(self, target: str | os.PathLike | IO[bytes]) -> None:
        import pyhepmc

        if hasattr(target, "fileno"):
            # a pipe (Delphes' stdin): let HepMC's C++ writer open it directly, which avoids
            # a Python call per write (Linux and macOS have /dev/fd)
            target.flush()
            target = f"/dev/fd/{target.fileno()}"
        self.target = str(target)
        self._writer = pyhepmc.io.WriterAsciiHepMC2(str(target))
        self._event = pyhepmc.GenEvent(pyhepmc.Units.GEV, pyhepmc.Units.MM)
        self.n_written = 0

    def write_batch(self, cols: HepevtColumns, weights: np.ndarray | None = None) -> None:
        """Write every event of `cols`; event numbers continue across batches."""
        ev = self._event
        off = cols.offsets
        for i in range(len(off) - 1):  # per event: slices handed to C++, no per-particle work
            s = slice(off[i], off[i + 1])
            ev.from_hepevt(self.n_written, cols.px[s], cols.py[s], cols.pz[s], cols.e[s], cols.m[s],
                           cols.pid[s], cols.status[s], parents=cols.parents[s],
                           vx=cols.vx[s], vy=cols.vy[s], vz=cols.vz[s], vt=cols.vt[s])
            if weights is not None:
                ev.weights = [float(weights[i])]
            self._writer.write(ev)
            self.n_written += 1
        if self._writer.failed():
            # e.g. Delphes died and closed the pipe: stop generating for nobody
            raise SimulationError(f"writing HepMC2 to {self.target} failed after {self.n_written} events "
                                  "(reader gone or disk full)")

    def close(self) -> None:
        self._writer.close()

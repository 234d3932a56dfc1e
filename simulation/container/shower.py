"""Shower an LHE file with Pythia 8 from PyPI, reading a card the way MG5aMC_PY8_interface does.

The container rules run MG5aMC_PY8_interface (C++, in the image) on the shower card. This is
the same job for machines without it (config simulation.container.shower_command may point
here), and it is how the tests run the very same card natively: it reads the card's subrun-0
block, showers Main:numberOfEvents events (or up to the end of the LHE) and writes HepMC2
(GeV, mm) to HEPMCoutput:file, which may be a pipe (/dev/fd/3 in the rules). The HepMC2 record is the native backend's
(simulation.hepmc_writer), so both backends hand Delphes the same kind of record.
"""
from __future__ import annotations

import logging
from pathlib import Path

import awkward as ak

from simulation.container.errors import ContainerCardError
from simulation.hepmc_writer import HepMC2Sink, hepevt_columns

log = logging.getLogger(__name__)
#: Settings MG5aMC_PY8_interface adds to Pythia's database before it reads a card.
INTERFACE_WORDS = {"HEPMCoutput:file": "hepmc.hepmc"}
INTERFACE_PARMS = {"HEPMCoutput:scaling": 1.0e9}
INTERFACE_MODES = {"LHEFInputs:nSubruns": 0}
INTERFACE_FLAGS = {"SysCalc:fullCutVariation": False}
BATCH_EVENTS = 100


def configure_pythia(card: Path, subrun: int = 0):
    """A Pythia that has read `card`'s global lines and subrun block `subrun`; not initialised."""
    import pythia8mc

    if not card.is_file():
        raise ContainerCardError(f"shower card {card} does not exist")
    pythia = pythia8mc.Pythia("", False)
    for name, value in INTERFACE_WORDS.items():
        pythia.settings.addWord(name, value)
    for name, value in INTERFACE_PARMS.items():
        pythia.settings.addParm(name, value, False, False, 0.0, 0.0)
    for name, value in INTERFACE_MODES.items():
        pythia.settings.addMode(name, value, True, False, 0, 100)
    for name, value in INTERFACE_FLAGS.items():
        pythia.settings.addFlag(name, value)
    if not pythia.readFile(str(card), subrun):
        raise ContainerCardError(f"{card}: Pythia rejected a line of this card (see the messages above)")
    if pythia.mode("Beams:frameType") != 4:
        raise ContainerCardError(f"{card}: Beams:frameType must be 4 (hard process from the LHE file)")
    if pythia.mode("LHEFInputs:nSubruns") < 1:
        raise ContainerCardError(
            f"{card}: LHEFInputs:nSubruns must be >= 1 (MG5aMC_PY8_interface runs no subrun otherwise)")
    return pythia


def shower(card: Path) -> int:
    """Shower the LHE named in `card` into its HEPMCoutput:file; returns the events written."""
    pythia = configure_pythia(card)
    n_max = pythia.mode("Main:numberOfEvents")
    out = pythia.word("HEPMCoutput:file")
    lhe = pythia.word("Beams:LHEF")
    if not Path(lhe).is_file():
        raise ContainerCardError(f"{card}: Beams:LHEF = {lhe} does not exist")
    if not pythia.init():
        raise ContainerCardError(f"{card}: Pythia failed to initialise on {lhe} (see the messages above)")
    sink = HepMC2Sink(out)
    try:
        while n_max < 0 or sink.n_written < n_max:
            want = BATCH_EVENTS if n_max < 0 else min(BATCH_EVENTS, n_max - sink.n_written)
            batch = pythia.nextBatch(want, "skip")    # stops early at the end of the LHE file
            if len(batch):
                weights = ak.to_numpy(ak.fill_none(ak.firsts(batch.info.weights), 1.0))
                sink.write_batch(hepevt_columns(batch.prt), weights)
            if len(batch) < want or pythia.infoPython().atEndOfFile():
                break
    finally:
        sink.close()
    log.info("showered %d events of %s into %s", sink.n_written, lhe, out)
    return sink.n_written

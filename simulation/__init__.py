"""Simulation stage: Pythia 8 hard process + muon filter -> HepMC2 -> real Delphes with a
minimum-bias pile-up library (mean mu = 50) -> {sample}/delphes/chunk{i}.root.

Modules (one job each):

- `pythia_setup`   Pythia instances from the .cmnd cards in cards/ (physics lives there)
- `muon_filter`    generator-level muon window (columnar, awkward)
- `hepmc_writer`   Pythia batches -> pruned HepMC2 records via pyhepmc
- `generation`     one chunk's generation loop: counts, cross-section, timings
- `delphes`        the one place Delphes runs: card rendering, DelphesHepMC2, hepmc2pileup, checks
- `pileup`         minimum-bias library
- `chunk`          a chunk end to end (pipe) or in two steps (file)
- `plan`           events -> chunks (seeds from (seed, sample, chunk, stream): common.seeds)
- `spectrum`       background pT-hat threshold study

CLI: ``python -m simulation {pileup,chunk,generate,delphes,card,spectrum} --help``.
"""

__all__ = ["SimulationError", "chunk_sizes"]

from .errors import SimulationError
from .plan import chunk_sizes

"""Minimum-bias pile-up library: Pythia 8 SoftQCD events -> HepMC2 -> Delphes' hepmc2pileup.

Generated once and shared by both samples; Delphes' PileUpMerger draws a Poisson(mu)
number of its events (with replacement, each rotated by a random phi and placed at a
random vertex) for every hard event.
"""
from __future__ import annotations

import logging
from pathlib import Path

from .delphes import hepmc2pileup_run
from .generation import GenerationStats, generate_chunk
from .hepmc_writer import HepMC2Sink

log = logging.getLogger(__name__)


def make_pileup_library(output: Path, n_events: int, seed: int, batch_size: int = 500) -> GenerationStats:
    """Write `n_events` minimum-bias events to the Delphes pile-up file `output` (atomic)."""
    label = f"pile-up library ({n_events} minimum-bias events)"
    with hepmc2pileup_run(Path(output), n_events) as stream:
        sink = HepMC2Sink(stream)
        try:
            stats = generate_chunk("minbias", n_events, seed, sink, label, window=None, batch_size=batch_size)
        finally:
            sink.close()
    return stats


def reuse_factor(n_hard_events: int, mean_pileup: float, library_events: int) -> float:
    """Mean number of times each library event is drawn: n_hard * mu / library size."""
    return n_hard_events * mean_pileup / library_events

"""Hard-process generation of one chunk: Pythia batches -> muon filter -> HepMC2 sink.

Generates until `n_kept` events passed the filter and records how many were generated
(up to and including the last kept one, so generated/kept is an unbiased filter
efficiency) and the cross-section Pythia estimated.
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import awkward as ak
import numpy as np
from tqdm import tqdm

from .errors import SimulationError
from .hepmc_writer import HepMC2Sink, hepevt_columns
from .muon_filter import MuonWindow, passes_filter
from .pythia_setup import cross_section_mb, make_pythia, process_cards

log = logging.getLogger(__name__)


@dataclass
class GenerationStats:
    """What one chunk's generation did: counts, cross-section, timings (s)."""

    label: str
    process: str
    seed: int
    generated: int = 0
    kept: int = 0
    sigma_gen_mb: float = 0.0
    sigma_err_mb: float = 0.0
    seconds: dict[str, float] = field(default_factory=lambda: {"pythia": 0.0, "filter": 0.0, "hepmc": 0.0})  # CPU s
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def filter_efficiency(self) -> float:
        return self.kept / self.generated if self.generated else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["filter_efficiency"] = self.filter_efficiency
        return d


def generate_chunk(process: str, n_kept: int, seed: int, sink: HepMC2Sink, label: str,
                   window: MuonWindow | None = MuonWindow(), force_muonic_b_decays: bool = True,
                   batch_size: int = 200, extra_settings: tuple[str, ...] = (),
                   max_generated_per_kept: int = 2000) -> GenerationStats:
    """Generate `process` events until `n_kept` pass `window` (None: keep all); write them to `sink`."""
    if n_kept <= 0:
        raise SimulationError(f"{label}: number of kept events must be positive, got {n_kept}")
    try:
        cards = process_cards(process, force_muonic_b_decays)
    except SimulationError as exc:
        raise SimulationError(f"{label}: {exc}") from None
    stats = GenerationStats(label=label, process=process, seed=seed, settings={
        "cards": [c.name for c in cards], "extra": list(extra_settings), "batch_size": batch_size,
        "muon_window": asdict(window) if window else None})
    pythia = make_pythia(cards, seed, extra_settings)
    limit = max_generated_per_kept * n_kept
    with tqdm(total=n_kept, desc=f"{label} kept", unit="ev", mininterval=5) as bar:
        while stats.kept < n_kept:
            t0 = time.process_time()
            batch = pythia.nextBatch(batch_size)
            t1 = time.process_time()
            prt = batch.prt
            mask = passes_filter(prt, window) if window else np.ones(len(prt), bool)
            kept_idx = np.flatnonzero(mask)[: n_kept - stats.kept]
            if stats.kept + len(kept_idx) == n_kept and len(kept_idx):
                stats.generated += int(kept_idx[-1]) + 1  # stop counting at the last kept event
            else:
                stats.generated += len(prt)
            t2 = time.process_time()
            if len(kept_idx):
                kept = prt[kept_idx]
                weights = ak.to_numpy(ak.fill_none(ak.firsts(batch.info.weights[kept_idx]), 1.0))
                sink.write_batch(hepevt_columns(kept), weights)
            t3 = time.process_time()
            stats.kept += len(kept_idx)
            stats.seconds["pythia"] += t1 - t0
            stats.seconds["filter"] += t2 - t1
            stats.seconds["hepmc"] += t3 - t2
            bar.update(len(kept_idx))
            if stats.generated > limit:
                raise SimulationError(
                    f"{label}: only {stats.kept} of {n_kept} events passed the muon filter {window} after "
                    f"{stats.generated} generated: check the process card and the filter window")
    stats.sigma_gen_mb, stats.sigma_err_mb = cross_section_mb(pythia)
    log.info("%s: generated %d, kept %d (filter efficiency %.4f), sigma %.4g mb; pythia %.1f s, "
             "filter %.1f s, hepmc %.1f s", label, stats.generated, stats.kept, stats.filter_efficiency,
             stats.sigma_gen_mb, stats.seconds["pythia"], stats.seconds["filter"], stats.seconds["hepmc"])
    return stats

"""One chunk end to end: generation (Pythia + filter + HepMC2) and Delphes with pile-up.

Two transports, same output:
- `pipe`: one job; HepMC2 streams from Pythia straight into DelphesHepMC2's stdin
  (no intermediate file; Pythia and Delphes run concurrently).
- `file`: `generate_to_file` writes a HepMC2 file, `delphes_from_file` simulates it (two
  jobs; the file is a Snakemake temp()). The container backend reuses `delphes_from_file`.
Generation statistics go to a small JSON next to the outputs.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.provenance import atomic_output, provenance
from common.seeds import chunk_seed

from .delphes import DEFAULT_CARD, delphes_run, pileup_entries, render_card
from .errors import SimulationError
from .generation import GenerationStats, generate_chunk
from .hepmc_writer import HepMC2Sink
from .muon_filter import MuonWindow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChunkSpec:
    """Which chunk to make and how (everything that determines its content)."""

    sample: str
    chunk: int
    n_kept: int
    master_seed: int
    window: MuonWindow = MuonWindow()
    force_muonic_b_decays: bool = True
    batch_size: int = 200
    pthat_min_gev: float | None = None  # background: PhaseSpace:pTHatMin override (None: the card's)

    def __post_init__(self) -> None:
        if self.pthat_min_gev is not None and (self.sample != "background" or not self.pthat_min_gev >= 0):
            raise SimulationError(f"{self.label}: a pT-hat threshold (pthat_min_gev) applies to the background "
                                  f"(b bbar) only and must be >= 0 GeV, got {self.pthat_min_gev} for {self.sample}")

    @property
    def extra_settings(self) -> tuple[str, ...]:
        """Pythia settings read after the cards (the pT-hat override)."""
        return () if self.pthat_min_gev is None else (f"PhaseSpace:pTHatMin = {self.pthat_min_gev:g}",)

    @property
    def label(self) -> str:
        return f"{self.sample} chunk {self.chunk}"

    @property
    def pythia_seed(self) -> int:
        return chunk_seed(self.master_seed, self.sample, self.chunk, "pythia")

    @property
    def delphes_seed(self) -> int:
        return chunk_seed(self.master_seed, self.sample, self.chunk, "delphes")


@dataclass(frozen=True)
class DetectorSpec:
    """Delphes card and pile-up for a run."""

    pileup_file: Path
    mean_pileup: float = 50.0
    card: Path = DEFAULT_CARD


def _generate(spec: ChunkSpec, sink: HepMC2Sink) -> GenerationStats:
    return generate_chunk(spec.sample, spec.n_kept, spec.pythia_seed, sink, spec.label, window=spec.window,
                          force_muonic_b_decays=spec.force_muonic_b_decays, batch_size=spec.batch_size,
                          extra_settings=spec.extra_settings)


def _check_pileup(spec: ChunkSpec, det: DetectorSpec) -> int:
    try:
        return pileup_entries(det.pileup_file)
    except SimulationError as exc:
        raise SimulationError(f"{spec.label}: {exc}") from None


def chunk_record(spec: ChunkSpec, stats: GenerationStats, **extra: Any) -> dict[str, Any]:
    """Provenance of a chunk: seeds, generation statistics, versions, command line, `extra`."""
    return provenance(None, sample=spec.sample, chunk=spec.chunk, master_seed=spec.master_seed,
                      pythia_seed=spec.pythia_seed, delphes_seed=spec.delphes_seed,
                      generation=stats.to_dict(), **extra)


def write_stats(path: Path, record: dict[str, Any]) -> None:
    """A chunk's provenance record as JSON (atomic)."""
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(record, indent=1, sort_keys=True, default=str))


def run_chunk_pipe(spec: ChunkSpec, det: DetectorSpec, output: Path, stats_path: Path) -> GenerationStats:
    """Pythia -> HepMC2 pipe -> DelphesHepMC2 -> `output` (ROOT, atomic); stats to `stats_path`."""
    n_pileup = _check_pileup(spec, det)
    card_text = render_card(det.card, det.pileup_file, det.mean_pileup, spec.delphes_seed)
    metadata: dict[str, Any] = {}
    with delphes_run(card_text, output, spec.n_kept, spec.label, metadata=metadata) as stream:
        sink = HepMC2Sink(stream)
        try:
            stats = _generate(spec, sink)
        finally:
            sink.close()
        metadata.update(chunk_record(spec, stats, transport="pipe", mean_pileup=det.mean_pileup,
                                     pileup_library_events=n_pileup, delphes_card=det.card.name))
    write_stats(stats_path, metadata)
    return stats


def generate_to_file(spec: ChunkSpec, hepmc_path: Path, stats_path: Path) -> GenerationStats:
    """Pythia -> filter -> HepMC2 file `hepmc_path` (atomic); stats to `stats_path`."""
    with atomic_output(hepmc_path) as tmp:
        sink = HepMC2Sink(tmp)
        try:
            stats = _generate(spec, sink)
        finally:
            sink.close()
    write_stats(stats_path, chunk_record(spec, stats, transport="file"))
    return stats


def count_hepmc2_events(path: Path) -> int:
    """Number of events ('E' lines) in a HepMC2 ASCII file, read in 16 MiB blocks."""
    n, prev = 0, b"\n"
    with open(path, "rb") as f:
        while block := f.read(1 << 24):
            n += (prev + block).count(b"\nE ")
            prev = block[-1:]
    return n


def delphes_from_file(hepmc_path: Path, det: DetectorSpec, output: Path, label: str, random_seed: int,
                      expected_events: int | None = None, metadata: dict[str, Any] | None = None) -> None:
    """DelphesHepMC2 on a HepMC2 file -> `output` (ROOT, atomic, event count checked).

    `metadata` (e.g. the generation record) is stored in the ROOT file as "provenance".
    """
    if not Path(hepmc_path).is_file():
        raise SimulationError(f"{label}: HepMC input {hepmc_path} does not exist")
    try:
        n_pileup = pileup_entries(det.pileup_file)
    except SimulationError as exc:
        raise SimulationError(f"{label}: {exc}") from None
    n_in = count_hepmc2_events(hepmc_path)
    if expected_events is not None and n_in != expected_events:
        raise SimulationError(f"{label}: HepMC input {hepmc_path} holds {n_in} events but generation "
                              f"recorded {expected_events} (truncated file?): remake it")
    if n_in == 0:
        raise SimulationError(f"{label}: HepMC input {hepmc_path} holds no events")
    card_text = render_card(det.card, det.pileup_file, det.mean_pileup, random_seed)
    record = {**(metadata or {}), "delphes_seed": random_seed, "mean_pileup": det.mean_pileup,
              "pileup_library_events": n_pileup, "delphes_card": det.card.name, "hepmc_events": n_in}
    with delphes_run(card_text, output, n_in, label, inputs=[Path(hepmc_path)], metadata=record):
        pass

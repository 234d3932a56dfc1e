"""CLI of the simulation stage: `python -m simulation <subcommand> --help`.

  pileup    minimum-bias library (Pythia SoftQCD -> hepmc2pileup) -> .pileup
  chunk     one chunk, streamed: Pythia -> muon filter -> HepMC2 pipe -> Delphes -> ROOT
  generate  one chunk's generation only -> HepMC2 file (+ stats JSON)
  delphes   Delphes with pile-up on a HepMC2 file -> ROOT (shared by every backend)
  card      print the Delphes card as it will run (pile-up file, mu, seed filled in)
  spectrum  background muon pT spectrum for several pT-hat thresholds (figure + CSV)
Settings come from the config's `simulation:` section as one JSON object (--config-json; keys left
out take their default from workflow/schemas/simulation.schema.yaml); flags name files and the
chunk (sample, chunk, kept events, master seed). A known error prints `error: <message>` and exits
with status 2.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from common import cli
from common.provenance import atomic_output, provenance
from common.seeds import chunk_seed
from common.settings import parse_section

from .chunk import ChunkSpec, DetectorSpec, delphes_from_file, generate_to_file, run_chunk_pipe
from .delphes import DEFAULT_CARD, render_card
from .errors import SimulationError
from .muon_filter import MuonWindow
from .pileup import make_pileup_library
from .settings import READS, reads
from .spectrum import pthat_study

log = logging.getLogger("simulation")
#: Pythia events per batch of the pile-up library at least (minimum-bias events are small)
PILEUP_BATCH_MIN = 500


def _add_chunk_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sample", required=True, help="process/sample name: signal or background")
    p.add_argument("--chunk", type=int, required=True, help="chunk index (>= 0); with --seed it fixes the seeds")
    p.add_argument("--n-kept", type=int, required=True, help="events that must pass the muon filter")
    p.add_argument("--seed", type=int, required=True, help="master seed of the config")
    p.add_argument("--stats", type=Path, required=True, help="output JSON: generated/kept counts, seeds, sigma")


def _add_detector_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pileup", type=Path, required=True, help="Delphes .pileup library")
    p.add_argument("--card", type=Path, default=DEFAULT_CARD,
                   help="Delphes card (default: the project's trimmed CMS pile-up card, 1-sigma thresholds)")


def _settings(a: argparse.Namespace) -> dict[str, Any]:
    """The command's part of the simulation section, defaults filled in."""
    return parse_section(a.config_json, "simulation", reads(a.command, getattr(a, "sample", None)))


def _chunk_spec(a: argparse.Namespace) -> ChunkSpec:
    s = _settings(a)
    f = s["muon_filter"]
    pthat = s.get("pthat_min_gev")
    return ChunkSpec(sample=a.sample, chunk=a.chunk, n_kept=a.n_kept, master_seed=a.seed,
                     window=MuonWindow(float(f["pt_min_gev"]), float(f["pt_max_gev"]), float(f["abs_eta_max"])),
                     force_muonic_b_decays=bool(s["force_muonic_b_decays"]), batch_size=int(s["batch_size"]),
                     pthat_min_gev=None if pthat is None else float(pthat))


def _mean_pileup(a: argparse.Namespace) -> float:
    """Mean number of pile-up interactions, as a float (what the card and the records held before)."""
    return float(_settings(a)["mean_pileup"])


def cmd_pileup(a: argparse.Namespace) -> None:
    s = _settings(a)
    seed = chunk_seed(a.seed, "minbias", 0, "pythia")
    stats = make_pileup_library(a.out, int(s["pileup_events"]), seed,
                                batch_size=max(int(s["batch_size"]), PILEUP_BATCH_MIN))
    if a.stats:
        with atomic_output(a.stats) as tmp:
            tmp.write_text(json.dumps(provenance(None, master_seed=a.seed, pythia_seed=seed,
                                                 generation=stats.to_dict()), indent=1, sort_keys=True))


def cmd_chunk(a: argparse.Namespace) -> None:
    spec = _chunk_spec(a)
    run_chunk_pipe(spec, DetectorSpec(a.pileup, _mean_pileup(a), a.card), a.out, a.stats)


def cmd_generate(a: argparse.Namespace) -> None:
    generate_to_file(_chunk_spec(a), a.out, a.stats)


def cmd_delphes(a: argparse.Namespace) -> None:
    expected, record = None, None
    if a.stats:
        try:
            record = json.loads(a.stats.read_text())
            expected = int(record["generation"]["kept"])
        except (OSError, ValueError, KeyError) as exc:
            raise SimulationError(
                f"{a.sample} chunk {a.chunk}: cannot read kept count from {a.stats} ({exc})") from None
    delphes_from_file(a.input, DetectorSpec(a.pileup, _mean_pileup(a), a.card), a.out,
                      f"{a.sample} chunk {a.chunk}", chunk_seed(a.seed, a.sample, a.chunk, "delphes"), expected,
                      metadata=record)


def cmd_card(a: argparse.Namespace) -> None:
    sys.stdout.write(render_card(a.card, a.pileup, _mean_pileup(a), a.random_seed))


def cmd_spectrum(a: argparse.Namespace) -> None:
    pthat_study(a.pthat_min, a.n_events, a.seed, a.out, a.csv,
                force_muonic_b_decays=bool(_settings(a)["force_muonic_b_decays"]))


def build_parser() -> argparse.ArgumentParser:
    parser, sub = cli.stage_parser("python -m simulation", __doc__)

    def command(name: str, func: Any, text: str) -> argparse.ArgumentParser:
        return cli.add_command(sub, name, func, text, section="simulation", reads=READS[name])

    p = command("pileup", cmd_pileup, "minimum-bias pile-up library (Pythia SoftQCD -> hepmc2pileup)")
    p.add_argument("--seed", type=int, required=True, help="master seed of the config")
    p.add_argument("--out", type=Path, required=True, help="output .pileup file")
    p.add_argument("--stats", type=Path, help="optional output JSON with counts, seed and cross-section")

    p = command("chunk", cmd_chunk, "one chunk streamed: Pythia -> filter -> HepMC2 pipe -> Delphes -> ROOT")
    _add_chunk_args(p)
    _add_detector_args(p)
    p.add_argument("--out", type=Path, required=True, help="output Delphes ROOT file")

    p = command("generate", cmd_generate, "one chunk's generation only -> HepMC2 file")
    _add_chunk_args(p)
    p.add_argument("--out", type=Path, required=True, help="output HepMC2 file")

    p = command("delphes", cmd_delphes, "Delphes with pile-up on a HepMC2 file -> ROOT")
    p.add_argument("--in", dest="input", type=Path, required=True, help="input HepMC2 file")
    p.add_argument("--sample", required=True, help="sample name (for seeds and messages)")
    p.add_argument("--chunk", type=int, required=True, help="chunk index (for seeds and messages)")
    p.add_argument("--seed", type=int, required=True, help="master seed of the config")
    p.add_argument("--stats", type=Path, help="generation JSON: its kept count is checked against the input")
    _add_detector_args(p)
    p.add_argument("--out", type=Path, required=True, help="output Delphes ROOT file")

    p = command("card", cmd_card, "print the Delphes card with pile-up file, mu and seed filled in")
    _add_detector_args(p)
    p.add_argument("--random-seed", type=int, default=1, help="Delphes RandomSeed (default 1)")

    p = command("spectrum", cmd_spectrum, "b bbar muon pT spectrum for several pT-hat thresholds")
    p.add_argument("--pthat-min", type=float, nargs="+", required=True, help="PhaseSpace:pTHatMin values, GeV")
    p.add_argument("--n-events", type=int, nargs="+", required=True,
                   help="events generated per threshold (one value, or one per threshold)")
    p.add_argument("--seed", type=int, required=True, help="master seed")
    p.add_argument("--out", type=Path, required=True, help="output figure (.png/.pdf)")
    p.add_argument("--csv", type=Path, required=True, help="output table of d sigma / d pT per threshold")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; a SimulationError prints `error: <message>` and returns 2."""
    return cli.main(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())

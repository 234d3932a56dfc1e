"""`python -m simulation.container ...`: render what the container rules run, or shower LHE natively."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from common import cli
from common.provenance import atomic_output
from common.settings import add_config_argument, parse_section
from simulation.container import cards
from simulation.container.shower import shower
from simulation.generation import generate_chunk
from simulation.hepmc_writer import HepMC2Sink
from simulation.settings import READS


def _write(path: Path, text: str) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(text)
    logging.getLogger(__name__).info("wrote %s", path)


def _mg5_script(args: argparse.Namespace) -> None:
    _write(args.out, cards.mg5_gridpack_script(args.sample, args.process_dir, args.nb_core))


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    """The command's part of the simulation section, defaults filled in."""
    return parse_section(args.config_json, "simulation", READS[args.command])


def _shower_card(args: argparse.Namespace) -> None:
    text = cards.shower_card(args.sample, args.lhe, args.hepmc, args.seed, args.n_events,
                             force_muonic_b_decays=bool(_settings(args)["force_muonic_b_decays"]))
    _write(args.out, text)


def _delphes_card(args: argparse.Namespace) -> None:
    _write(args.out, cards.delphes_card(args.card, args.pileup, args.seed, float(_settings(args)["mean_pileup"])))


def _check_cards(args: argparse.Namespace) -> None:
    for sample in cards.SAMPLES:
        commands = cards.read_proc_commands(cards.proc_card(sample))
        settings = cards.read_run_settings(cards.run_settings_card(sample))
        print(f"{sample}: {' | '.join(commands)} ; {len(settings)} run_card settings")


def _shower(args: argparse.Namespace) -> None:
    shower(args.card)


def _minbias_hepmc(args: argparse.Namespace) -> None:
    with atomic_output(args.out) as tmp:
        sink = HepMC2Sink(tmp)
        try:
            generate_chunk("minbias", int(_settings(args)["pileup_events"]), args.seed, sink,
                           f"minimum bias -> {args.out}",
                           window=None, batch_size=500)
        finally:
            sink.close()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m simulation.container", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("mg5-script", help="MG5 command file: build + integrate a sample's gridpack")
    p.add_argument("--sample", required=True, choices=cards.SAMPLES)
    p.add_argument("--process-dir", required=True, help="folder MG5 writes the process into")
    p.add_argument("--nb-core", type=int, default=1, help="cores MG5 may use while integrating")
    p.add_argument("--out", required=True, type=Path, help="command file to write")
    p.set_defaults(func=_mg5_script)

    p = sub.add_parser("shower-card", help="Pythia 8 card that showers one LHE chunk (Beams:frameType = 4)")
    p.add_argument("--sample", required=True, choices=cards.SAMPLES)
    p.add_argument("--lhe", required=True, help="LHE file (.lhe or .lhe.gz) as seen by the shower")
    p.add_argument("--hepmc", required=True,
                   help="HepMC2 output as seen by the shower (the rules use /dev/fd/3, a pipe)")
    p.add_argument("--seed", required=True, type=int, help="Random:seed in [1, 900000000]")
    p.add_argument("--n-events", required=True, type=int, help="LHE events in the file (the shower stops at its end)")
    p.add_argument("--out", required=True, type=Path)
    add_config_argument(p, "simulation", READS["shower-card"])
    p.set_defaults(func=_shower_card)

    p = sub.add_parser("delphes-card", help="the project's Delphes card with a chunk's pile-up file and seed")
    p.add_argument("--card", required=True, type=Path)
    p.add_argument("--pileup", required=True, help="pile-up library path as seen by Delphes")
    p.add_argument("--seed", required=True, type=int, help="Delphes RandomSeed")
    p.add_argument("--out", required=True, type=Path)
    add_config_argument(p, "simulation", READS["delphes-card"])
    p.set_defaults(func=_delphes_card)

    p = sub.add_parser("minbias-hepmc", help="minimum-bias events (native cards, pythia8mc) -> HepMC2 for hepmc2pileup")
    p.add_argument("--seed", required=True, type=int, help="Random:seed (the native pile-up library's seed)")
    p.add_argument("--out", required=True, type=Path)
    add_config_argument(p, "simulation", READS["minbias-hepmc"])
    p.set_defaults(func=_minbias_hepmc)

    p = sub.add_parser("check-cards", help="parse and check the MadGraph cards of both samples")
    p.set_defaults(func=_check_cards)

    p = sub.add_parser("shower", help="MG5aMC_PY8_interface equivalent with pythia8mc: CARD -> HepMC2")
    p.add_argument("card", type=Path, help="shower card (from shower-card)")
    p.set_defaults(func=_shower)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; a ContainerCardError (a SimulationError) prints `error: <message>` and returns 2."""
    return cli.main(build_parser(), argv)

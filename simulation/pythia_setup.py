"""Pythia 8 instances configured from the .cmnd cards in simulation/cards (physics lives there).

A sample name is a process card: `signal`, `background`, `minbias`; `common.cmnd` is read
first, `force_b_muonic.cmnd` after the background card when the muonic bias is on.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from common.seeds import PYTHIA_SEED_MAX

from .errors import SimulationError

log = logging.getLogger(__name__)

CARD_DIR = Path(__file__).resolve().parent / "cards"
COMMON_CARD = CARD_DIR / "common.cmnd"
FORCE_B_MUONIC_CARD = CARD_DIR / "force_b_muonic.cmnd"
#: Hard processes of the two samples; `minbias` makes the pile-up library.
PROCESSES = ("signal", "background")


def process_cards(process: str, force_muonic_b_decays: bool = True) -> list[Path]:
    """Cards to read, in order, for `process` (a sample name or `minbias`)."""
    known = PROCESSES + ("minbias",)
    if process not in known:
        raise SimulationError(f"unknown process '{process}': known processes are {', '.join(known)} "
                              f"(one .cmnd card each in {CARD_DIR.name}/)")
    cards = [COMMON_CARD, CARD_DIR / f"{process}.cmnd"]
    if process == "background" and force_muonic_b_decays:
        cards.append(FORCE_B_MUONIC_CARD)
    return cards


def read_cmnd(card: Path) -> list[tuple[int, str]]:
    """(line number, setting) for every setting line of a .cmnd card, comments stripped."""
    if not card.is_file():
        raise SimulationError(f"Pythia card {card} does not exist")
    settings = []
    for number, line in enumerate(card.read_text().splitlines(), start=1):
        text = line.split("!", 1)[0].strip()
        if text and (text[0].isalnum()):
            settings.append((number, text))
    return settings


def make_pythia(cards: Sequence[Path], seed: int, extra: Sequence[str] = ()):
    """An initialised pythia8mc.Pythia: cards in order, then `extra` settings, then the seed.

    Every setting must be known to Pythia (a typo is an error naming card and line), and
    the seed must be in Pythia's range [1, 900000000].
    """
    import pythia8mc

    if not 1 <= seed <= PYTHIA_SEED_MAX:
        raise SimulationError(f"Pythia seed {seed} outside Random:seed's allowed range [1, {PYTHIA_SEED_MAX}]")
    pythia = pythia8mc.Pythia("", False)
    lines = [(f"{card.name}:{n}", s) for card in cards for n, s in read_cmnd(card)]
    lines += [("command line", s) for s in extra]
    lines += [("seed", "Random:setSeed = on"), ("seed", f"Random:seed = {seed}")]
    for where, setting in lines:
        if not pythia.readString(setting):
            raise SimulationError(f"Pythia rejected the setting '{setting}' ({where}): check its spelling "
                                  "against the Pythia 8 manual")
    if not pythia.init():
        raise SimulationError(f"Pythia failed to initialise with cards {[c.name for c in cards]} "
                              f"and {list(extra)}: see the Pythia messages in the log")
    return pythia


def cross_section_mb(pythia) -> tuple[float, float]:
    """Estimated cross-section of the generated process and its error, in mb."""
    info = pythia.infoPython()
    return float(info.sigmaGen()), float(info.sigmaErr())

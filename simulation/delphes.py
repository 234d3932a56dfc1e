"""Everything that runs the real Delphes: locating it, rendering the card, DelphesHepMC2,
hepmc2pileup, and checking what they wrote. The one place Delphes is invoked, so the
native and (later) container backends share card handling and output checks.

Delphes is found through the environment variable DELPHES_DIR (default:
<project root>/.deps/delphes, where `make setup` builds it).
"""
from __future__ import annotations

import json
import logging
import os
import re
import resource
import struct
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from common.provenance import atomic_output

from .errors import SimulationError

log = logging.getLogger(__name__)

PROJECT_DIR = Path(__file__).resolve().parent.parent
CARD_DIR = Path(__file__).resolve().parent / "cards"
#: the default detector: the CMS pile-up card with 1-sigma tower thresholds (docs/fidelity.md chose it)
DEFAULT_CARD = CARD_DIR / "delphes_card_CMS_PileUp_muon_images_sig1.tcl"
#: Branches (and leaves) the rest of the pipeline reads from tree "Delphes".
REQUIRED_LEAVES = (
    "Tower.ET", "Tower.Eta", "Tower.Phi", "Tower.Eem", "Tower.Ehad",
    "Muon.PT", "Muon.Eta", "Muon.Phi", "Muon.Charge", "Event.Weight",
)
TREE_NAME = "Delphes"


def delphes_dir() -> Path:
    """Delphes install prefix: $DELPHES_DIR, else <project>/.deps/delphes."""
    return Path(os.environ.get("DELPHES_DIR") or PROJECT_DIR / ".deps" / "delphes").resolve()


def delphes_executable(name: str) -> Path:
    """Path of a Delphes program (DelphesHepMC2, hepmc2pileup); clear error when missing."""
    exe = delphes_dir() / "bin" / name
    if not (exe.is_file() and os.access(exe, os.X_OK)):
        raise SimulationError(
            f"Delphes program {exe} not found: build Delphes with `make setup` or point "
            "DELPHES_DIR at a Delphes 3.5 installation")
    return exe


def _replace_one(text: str, pattern: str, replacement: str, what: str, card: Path) -> str:
    new, n = re.subn(pattern, replacement, text, flags=re.M)
    if n != 1:
        raise SimulationError(
            f"Delphes card {card}: expected exactly one '{what}' line to fill in, found {n}; "
            "keep the card's `set RandomSeed`, `set PileUpFile` and `set MeanPileUp` lines")
    return new


def render_card(card: Path, pileup_file: Path, mean_pileup: float, random_seed: int) -> str:
    """Card text with the pile-up library path, mean pile-up and ROOT seed filled in."""
    if not card.is_file():
        raise SimulationError(f"Delphes card {card} does not exist")
    if mean_pileup < 0:
        raise SimulationError(f"mean pile-up must be >= 0, got {mean_pileup}")
    if not 1 <= random_seed < 2**31:
        raise SimulationError(f"Delphes RandomSeed must be in [1, 2^31), got {random_seed}")
    text = card.read_text()
    text = _replace_one(text, r"^set RandomSeed\s+\S+\s*$", f"set RandomSeed {random_seed}", "set RandomSeed", card)
    text = _replace_one(text, r"^(\s*)set PileUpFile\s+\S+\s*$", rf"\g<1>set PileUpFile {Path(pileup_file).resolve()}",
                        "set PileUpFile", card)
    text = _replace_one(text, r"^(\s*)set MeanPileUp\s+\S+\s*$", rf"\g<1>set MeanPileUp {mean_pileup:g}",
                        "set MeanPileUp", card)
    return text


def pileup_entries(path: Path) -> int:
    """Number of events in a Delphes .pileup file (XDR int64 at its end), checked for sanity."""
    path = Path(path)
    if not path.is_file():
        raise SimulationError(f"pile-up library {path} does not exist: run `python -m simulation pileup` "
                              "(the Snakemake rule `pileup_library`) first")
    size = path.stat().st_size
    if size < 16:
        raise SimulationError(f"pile-up library {path} is truncated ({size} bytes): remake it")
    with open(path, "rb") as f:
        f.seek(-8, os.SEEK_END)
        (entries,) = struct.unpack(">q", f.read(8))
    if entries <= 0 or 8 * entries + 8 > size:
        raise SimulationError(f"pile-up library {path} is not a Delphes pile-up file or is truncated "
                              f"(claims {entries} events in {size} bytes): remake it")
    return int(entries)


def _children_cpu_s() -> float:
    """User + system CPU seconds of this process's finished (waited-for) child processes."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _tail(path: Path, n_lines: int = 15) -> str:
    """The last lines of a program's log, led by the line that names a crash (ROOT's '*** Break ***')
    and the last event count, which a stack trace would push out of the tail."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return "(no log)"
    tail = lines[-n_lines:]
    lead = [line for line in lines[:-n_lines] if "*** Break ***" in line]
    counts = [line for line in lines[:-n_lines] if line.endswith("events processed")]
    return "\n".join([*counts[-1:], *lead, *tail])


def check_delphes_output(path: Path, expected_events: int, label: str) -> None:
    """Raise unless `path` holds tree Delphes with every required leaf and `expected_events` entries."""
    import uproot

    try:
        with uproot.open(path) as f:
            if TREE_NAME not in f:
                raise SimulationError(f"{label}: Delphes output {path} has no tree '{TREE_NAME}'")
            tree = f[TREE_NAME]
            keys = set(tree.keys())
            missing = [leaf for leaf in REQUIRED_LEAVES if leaf.split(".")[0] + "/" + leaf not in keys]
            n = tree.num_entries
    except SimulationError:
        raise
    except Exception as exc:  # uproot raises many types for a broken file
        raise SimulationError(f"{label}: Delphes output {path} is unreadable ({exc}); "
                              "Delphes probably crashed or the disk is full") from None
    if missing:
        raise SimulationError(f"{label}: Delphes output lacks {missing}: the card must write the "
                              "Tower (Calorimeter/towers) and Muon branches")
    if n != expected_events:
        raise SimulationError(f"{label}: Delphes wrote {n} events but {expected_events} went in "
                              "(truncated input or a Delphes crash); see the log above")


@contextmanager
def _streamed_process(cmd: list[str], inputs: Sequence[Path], workdir: Path, log_path: Path,
                      label: str) -> Iterator[tuple[IO[bytes] | None, list[int]]]:
    """Start `cmd` reading `inputs` (or its stdin, yielded); yields (stdin, [exit code after the block])."""
    rc: list[int] = []
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(cmd + ([str(Path(p).resolve()) for p in inputs] or ["-"]),
                                stdin=None if inputs else subprocess.PIPE,
                                stdout=log_file, stderr=subprocess.STDOUT, cwd=workdir)
        try:
            yield proc.stdin, rc
            if proc.stdin:
                proc.stdin.close()
            rc.append(proc.wait())
        except BaseException as exc:
            exited = proc.poll()
            if exited is None:
                proc.kill()
                proc.wait()
            elif exited != 0 and isinstance(exc, (SimulationError, BrokenPipeError, OSError)):
                # the writer failed because the program died: report the program's own error
                raise SimulationError(f"{label}: {Path(cmd[0]).name} failed with exit code {exited}:\n"
                                      f"{_tail(log_path)}") from None
            raise


@contextmanager
def delphes_run(card_text: str, output: Path, n_events: int, label: str,
                inputs: Sequence[Path] = (), metadata: dict | None = None) -> Iterator[IO[bytes] | None]:
    """Run DelphesHepMC2 on HepMC2 files, or on what the caller writes to the yielded pipe.

    With `inputs` empty, yields a binary stream (Delphes' stdin) to write HepMC2 into;
    otherwise yields None and Delphes reads the files. On leaving the block the output
    is checked (tree, branches, `n_events` entries) and only then renamed to `output`;
    any failure raises SimulationError naming `label` and leaves no file at `output`.
    `metadata` (may be filled in by the caller inside the block) is stored in the file as
    the JSON string "provenance", next to tree Delphes.
    """
    exe = delphes_executable("DelphesHepMC2")
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".delphes_", dir=output.parent) as tmp, \
            atomic_output(output) as tmp_root:
        card_path = Path(tmp).resolve() / "card.tcl"
        card_path.write_text(card_text)
        log_path = Path(tmp) / "delphes.log"
        cmd = [str(exe), str(card_path), str(tmp_root.resolve())]
        log.info("%s: running %s", label, " ".join(cmd + [str(p) for p in inputs]))
        cpu_before = _children_cpu_s()
        with _streamed_process(cmd, inputs, Path(tmp), log_path, label) as (stdin, rc):
            yield stdin
        delphes_cpu_s = _children_cpu_s() - cpu_before  # DelphesHepMC2 is the only child waited for
        if rc[0] != 0:
            raise SimulationError(f"{label}: DelphesHepMC2 failed with exit code {rc[0]}:\n{_tail(log_path)}")
        check_delphes_output(tmp_root, n_events, label)
        import uproot

        if metadata is not None:  # the caller's record (the pipe transport's chunk JSON) gets Delphes' CPU too
            metadata["delphes_cpu_s"] = delphes_cpu_s
        metadata = {**(metadata or {}), "delphes_card_text": card_text, "delphes_cpu_s": delphes_cpu_s}
        with uproot.update(tmp_root) as f:
            f["provenance"] = json.dumps(metadata, sort_keys=True, default=str)
        log.info("%s: Delphes wrote %d events -> %s (%.1f ms CPU per event)", label, n_events, output,
                 1e3 * delphes_cpu_s / max(n_events, 1))


@contextmanager
def hepmc2pileup_run(output: Path, n_events: int, inputs: Sequence[Path] = ()) -> Iterator[IO[bytes] | None]:
    """Run Delphes' own converter hepmc2pileup (HepMC2 -> .pileup) on files or the yielded pipe.

    Checked (event count) and atomic, like `delphes_run`.
    """
    exe = delphes_executable("hepmc2pileup")
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    label = f"pile-up library {output}"
    with tempfile.TemporaryDirectory(prefix=".pileup_", dir=output.parent) as tmp, \
            atomic_output(output) as tmp_out:
        log_path = Path(tmp) / "hepmc2pileup.log"
        cmd = [str(exe), str(tmp_out.resolve())]
        log.info("%s: running %s", label, " ".join(cmd + [str(p) for p in inputs]))
        with _streamed_process(cmd, inputs, Path(tmp), log_path, label) as (stdin, rc):
            yield stdin
        if rc[0] != 0:
            raise SimulationError(f"{label}: hepmc2pileup failed with exit code {rc[0]}:\n{_tail(log_path)}")
        n = pileup_entries(tmp_out)
        if n != n_events:
            raise SimulationError(f"{label}: hepmc2pileup wrote {n} events but {n_events} went in")
        log.info("%s: %d minimum-bias events", label, n)

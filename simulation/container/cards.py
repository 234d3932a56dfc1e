"""Read the MadGraph cards and render the per-sample / per-chunk files the container rules run.

Physics lives in the card files (simulation/cards/, simulation/cards/madgraph/); this module
only assembles them and fills in run values (event counts, seeds, file paths).
"""
from __future__ import annotations

import re
from pathlib import Path

from simulation.container.errors import ContainerCardError
from simulation.delphes import render_card
from simulation.errors import SimulationError

CARDS_DIR = Path(__file__).resolve().parents[1] / "cards"
MADGRAPH_DIR = CARDS_DIR / "madgraph"
SAMPLES = ("signal", "background")
#: MG5 commands that the renderer writes itself (a proc card must not contain them).
RENDERED_MG5_COMMANDS = ("output", "launch", "set", "done", "exit", "quit", "shower", "detector")
#: run_card entries every sample card must set (the paper's beams; no external PDF set).
REQUIRED_RUN_SETTINGS = {"lpp1": "1", "lpp2": "1", "ebeam1": "6500.0", "ebeam2": "6500.0", "gridpack": "True"}
#: MG5 launch switches: LHE only; Pythia and Delphes run as separate pipeline steps.
LAUNCH_SWITCHES = ("shower=OFF", "detector=OFF", "analysis=OFF", "madspin=OFF", "reweight=OFF")


def _check_sample(sample: str) -> None:
    if sample not in SAMPLES:
        raise ContainerCardError(f"unknown sample {sample!r}: choose one of {', '.join(SAMPLES)}")


def proc_card(sample: str) -> Path:
    """MadGraph process card of a sample (simulation/cards/madgraph/<sample>_proc.dat)."""
    _check_sample(sample)
    return MADGRAPH_DIR / f"{sample}_proc.dat"


def run_settings_card(sample: str) -> Path:
    """MadGraph run_card settings of a sample (simulation/cards/madgraph/<sample>_run.dat)."""
    _check_sample(sample)
    return MADGRAPH_DIR / f"{sample}_run.dat"


def _meaningful_lines(path: Path) -> list[tuple[int, str]]:
    if not path.is_file():
        raise ContainerCardError(f"card {path} does not exist; it ships with the project (simulation/cards/)")
    out = []
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if line:
            out.append((number, line))
    return out


def read_proc_commands(path: Path) -> list[str]:
    """MG5 commands of a process card: `import model ...` and `generate ...` (+ define/add process)."""
    commands = []
    for number, line in _meaningful_lines(path):
        word = line.split()[0].lower()
        if word in RENDERED_MG5_COMMANDS:
            raise ContainerCardError(
                f"{path}:{number}: '{line}' - the process card holds only the process; "
                "output/launch/set lines are written by `python -m simulation.container mg5-script`")
        if word == "import" and len(line.split()) >= 3 and line.split()[1] == "model":
            model = line.split()[2]
            if "/" in model or model.startswith(("http", "~")):
                raise ContainerCardError(f"{path}:{number}: model '{model}' is not a built-in MG5 model; "
                                         "no model is downloaded or read from outside the image")
        commands.append(line)
    words = [c.split()[0].lower() for c in commands]
    if "import" not in words or "generate" not in words:
        raise ContainerCardError(f"{path}: a process card needs an `import model ...` and a `generate ...` line")
    return commands


def read_run_settings(path: Path) -> dict[str, str]:
    """run_card entries of a settings card, in MG5 run_card syntax `value = name ! comment`."""
    settings: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines() if path.is_file() else [], start=1):
        line = raw.split("!", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"(\S+)\s*=\s*([A-Za-z_][A-Za-z0-9_]*)", line)
        if not match:
            raise ContainerCardError(f"{path}:{number}: '{raw.strip()}' is not `value = name ! comment`")
        value, name = match.groups()
        if name in settings:
            raise ContainerCardError(f"{path}:{number}: run_card entry '{name}' is set twice")
        if name in ("nevents", "iseed"):
            raise ContainerCardError(f"{path}:{number}: '{name}' is set per chunk (gridpack run.sh), not in the card")
        settings[name] = value
    if not path.is_file():
        raise ContainerCardError(f"card {path} does not exist; it ships with the project (simulation/cards/madgraph/)")
    missing = {k: v for k, v in REQUIRED_RUN_SETTINGS.items() if settings.get(k) != v}
    if missing:
        raise ContainerCardError(f"{path}: these run_card entries must be set as shown: "
                                 + ", ".join(f"{v} = {k}" for k, v in missing.items()))
    return settings


def mg5_gridpack_script(sample: str, process_dir: str, nb_core: int = 1) -> str:
    """MG5 command file: build the process in `process_dir` and integrate it into a gridpack."""
    commands = read_proc_commands(proc_card(sample))
    settings = read_run_settings(run_settings_card(sample))
    lines = [f"# rendered by python -m simulation.container mg5-script --sample {sample}",
             "set automatic_html_opening False",
             "# no update check (compute nodes have no network); multicore on one node",
             "set auto_update 0",
             "set run_mode 2",
             f"set nb_core {nb_core}",
             *commands,
             f"output {process_dir} -nojpeg -f",
             f"launch {process_dir}",
             *LAUNCH_SWITCHES,
             "done",
             *(f"set {name} {value}" for name, value in settings.items()),
             "done"]
    return "\n".join(lines) + "\n"


def shower_card(sample: str, lhe: str, hepmc: str, seed: int, n_events: int,
                force_muonic_b_decays: bool = True) -> str:
    """Pythia 8 card that showers one LHE chunk into HepMC2 (MG5aMC_PY8_interface conventions).

    Concatenates the native backend's common.cmnd (tune), force_b_muonic.cmnd (background,
    when on) and madgraph/pythia8_lhe.cmnd, then a run block with the seed and the files.
    """
    _check_sample(sample)
    if not 1 <= seed <= 900_000_000:
        raise ContainerCardError(f"Pythia seed {seed} is outside [1, 900000000]")
    if n_events < 1:
        raise ContainerCardError(f"n_events must be >= 1 (MG5aMC_PY8_interface rejects -1), got {n_events}")
    parts = [CARDS_DIR / "common.cmnd"]
    if sample == "background" and force_muonic_b_decays:
        parts.append(CARDS_DIR / "force_b_muonic.cmnd")
    parts.append(MADGRAPH_DIR / "pythia8_lhe.cmnd")
    text = []
    for part in parts:
        if not part.is_file():
            raise ContainerCardError(f"Pythia card {part} does not exist; it ships with the project")
        text += [f"! ---- {part.relative_to(CARDS_DIR.parent)}", part.read_text().rstrip(), ""]
    text += ["! ---- run block (rendered per chunk)",
             "Random:setSeed = on",
             f"Random:seed = {seed}",
             f"Main:numberOfEvents = {n_events}   ! the LHE's event count: stop at its end",
             f"HEPMCoutput:file = {hepmc}",
             "LHEFInputs:nSubruns = 1",
             "Main:subrun = 0",
             "Beams:frameType = 4                ! read the hard process from a Les Houches Event file",
             f"Beams:LHEF = {lhe}"]
    return "\n".join(text) + "\n"


def delphes_card(card: Path, pileup_file: str, seed: int, mean_pileup: float) -> str:
    """The native backend's Delphes card rendering (simulation.delphes.render_card): same card,
    same pile-up / seed substitution, so both backends run Delphes identically."""
    try:
        return render_card(card, Path(pileup_file), mean_pileup, seed)
    except SimulationError as err:
        raise ContainerCardError(str(err)) from None

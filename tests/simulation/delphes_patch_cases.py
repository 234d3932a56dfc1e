"""Helpers of the Delphes patch tests (importable as `delphes_patch_cases`; pytest puts tests/simulation
on sys.path): the Delphes source the build uses, SimpleCalorimeter.cc compiled alone (patched or not,
with or without libstdc++ bounds checks) into a library that overrides the installed module, and
hand-made events with many more calorimeter particles than tracks.

Only modules/SimpleCalorimeter.cc differs between a patched and an unpatched Delphes 3.5.1
(envs/delphes-3.5.1-*.patch), so the installed libDelphes with that one file compiled again and
preloaded (LD_PRELOAD: its SimpleCalorimeter symbols, constructor and vtable included, take
precedence over libDelphes' own) is the other build, for ~5 s of compiling instead of a full rebuild.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
import tarfile
from pathlib import Path

import numpy as np

from simulation.hepmc_writer import HepevtColumns, HepMC2Sink

PROJECT_DIR = Path(__file__).resolve().parents[2]
VERSION = "3.5.1"
#: where envs/install_delphes.sh downloads the source when DELPHES_TARBALL is not set
UPSTREAM_URL = f"https://github.com/delphes/delphes/archive/refs/tags/{VERSION}.tar.gz"
PATCHES = tuple(sorted((PROJECT_DIR / "envs").glob(f"delphes-{VERSION}-*.patch")))
MODULE = "modules/SimpleCalorimeter.cc"
#: ROOT's crash handler would run gdb for a stack trace (seconds, and gdb may be missing)
ROOTRC = "Root.Stacktrace: no\n"

# (PDG id, mass GeV) of the hand-made particles: neutrals reach the calorimeters with no track
NEUTRALS = ((22, 0.0), (130, 0.497611), (2112, 0.939565))
CHARGED = ((211, 0.13957), (-211, 0.13957))
MUON = (13, 0.105658)
PROTON_MASS = 0.938272


def source_tarball(download_dir: Path) -> tuple[Path | None, str]:
    """The Delphes source the build uses: $DELPHES_TARBALL, else the upstream tag (downloaded as
    envs/install_delphes.sh does). Returns (path, "") or (None, why there is none)."""
    given = os.environ.get("DELPHES_TARBALL")
    if given:
        if not Path(given).is_file():
            raise FileNotFoundError(f"DELPHES_TARBALL={given} is not a file: point it at delphes-{VERSION}.tar.gz")
        return Path(given), ""
    if shutil.which("curl") is None:
        return None, f"no Delphes {VERSION} source: DELPHES_TARBALL is not set and there is no curl to download it"
    target = download_dir / f"delphes-{VERSION}.tar.gz"
    done = subprocess.run(["curl", "-fsSL", "--retry", "2", "--max-time", "120", "-o", str(target), UPSTREAM_URL],
                          capture_output=True, text=True)
    if done.returncode != 0:
        return None, (f"no Delphes {VERSION} source: DELPHES_TARBALL is not set and {UPSTREAM_URL} could not be "
                      f"downloaded ({done.stderr.strip() or done.returncode})")
    return target, ""


def extract_source(tarball: Path, dest: Path) -> Path:
    """Unpack the Delphes source tree (only what compiling one module needs) and return its root."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball) as tar:
        wanted = [m for m in tar.getmembers()
                  if m.name.split("/", 1)[-1].startswith(("classes/", "modules/", "external/ExRootAnalysis/"))]
        tar.extractall(dest, members=wanted, filter="data")
    roots = [p for p in dest.iterdir() if p.is_dir() and (p / MODULE).is_file()]
    if len(roots) != 1:
        raise FileNotFoundError(f"{tarball} has no Delphes source tree with {MODULE}")
    return roots[0]


def apply_patches(src: Path, patches: tuple[Path, ...] = PATCHES) -> None:
    """Apply the build's patches exactly as envs/install_delphes.sh does (patch -p1 --forward)."""
    for patch_file in patches:
        subprocess.run(["patch", "-d", str(src), "-p1", "--forward", "--quiet", "-i", str(patch_file)], check=True)


def root_cflags() -> list[str]:
    """Compiler flags of the ROOT that Delphes was built against (the `root` wheel's root-config)."""
    root_config = Path(sysconfig.get_paths()["purelib"]) / "ROOT" / "bin" / "root-config"
    out = subprocess.run([str(root_config), "--cflags"], check=True, capture_output=True, text=True).stdout
    return out.split()


def compile_module(src: Path, out: Path, delphes: Path, bounds_checks: bool) -> subprocess.Popen:
    """Start compiling src/modules/SimpleCalorimeter.cc into the shared library `out`, linked
    against the installed libDelphes (its rpath set, so any process can load it); with
    `bounds_checks`, -D_GLIBCXX_ASSERTIONS turns an out-of-range vector operator[] into an abort.
    -fvisibility-inlines-hidden keeps the checked inline operator[] from binding to libDelphes' copies."""
    lib = delphes / "lib"
    cmd = [os.environ.get("CXX", "c++"), "-O2", "-fPIC", "-shared", "-fvisibility-inlines-hidden",
           *(["-D_GLIBCXX_ASSERTIONS"] if bounds_checks else []), *root_cflags(),
           "-I", str(src), "-I", str(src / "external"), str(src / MODULE), "-o", str(out),
           f"-L{lib}", "-lDelphes", f"-Wl,-rpath,{lib}"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def hand_made_columns(n_events: int, n_neutral: int, n_charged: int, with_muon: bool,
                      rng: np.random.Generator) -> HepevtColumns:
    """Events of two beam protons and final-state particles from the origin (pT 0.5-5 GeV, |eta| < 2.5):
    `n_neutral` photons/K_L/neutrons, `n_charged` pions and, with `with_muon`, one central 12 GeV muon.
    With the project's card only muons are tracks, so particle hits outnumber track hits."""
    per_event = 2 + int(with_muon) + n_neutral + n_charged
    n = n_events * per_event
    kinds = np.array([*NEUTRALS, *CHARGED], dtype=float)
    choice = np.concatenate([rng.integers(0, len(NEUTRALS), (n_events, n_neutral)),
                             rng.integers(len(NEUTRALS), len(kinds), (n_events, n_charged))], axis=1)
    pid = np.empty((n_events, per_event), np.int32)
    mass = np.empty((n_events, per_event))
    pt = rng.uniform(0.5, 5.0, (n_events, per_event))
    eta = rng.uniform(-2.5, 2.5, (n_events, per_event))
    phi = rng.uniform(-np.pi, np.pi, (n_events, per_event))
    pid[:, :2], mass[:, :2] = 2212, PROTON_MASS
    if with_muon:
        pid[:, 2], mass[:, 2], pt[:, 2], eta[:, 2] = MUON[0], MUON[1], 12.0, rng.uniform(-1.0, 1.0, n_events)
    first = 2 + int(with_muon)
    pid[:, first:], mass[:, first:] = kinds[choice, 0].astype(np.int32), kinds[choice, 1]
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    px[:, :2] = py[:, :2] = 0.0
    pz[:, 0], pz[:, 1] = 6500.0, -6500.0
    status = np.ones((n_events, per_event), np.int32)
    status[:, :2] = 4
    parents = np.zeros((n_events, per_event, 2), np.int32)
    parents[:, 2:] = (1, 2)
    zero = np.zeros(n)
    return HepevtColumns(
        offsets=np.arange(n_events + 1, dtype=np.int64) * per_event,
        px=px.ravel(), py=py.ravel(), pz=pz.ravel(), e=np.sqrt(px**2 + py**2 + pz**2 + mass**2).ravel(),
        m=mass.ravel(), pid=pid.ravel(), status=status.ravel(), parents=parents.reshape(n, 2),
        vx=zero, vy=zero, vz=zero, vt=zero)


def write_hepmc2(path: Path, cols: HepevtColumns) -> Path:
    """Write `cols` as HepMC2 with the pipeline's own writer (weight 1)."""
    sink = HepMC2Sink(str(path))
    sink.write_batch(cols, np.ones(len(cols.offsets) - 1))
    sink.close()
    return path


def run_delphes(delphes: Path, card: Path, output: Path, hepmc: Path, preload: Path | None) -> tuple[int, str]:
    """DelphesHepMC2 on `hepmc` (in output's folder, ROOT stack traces off), optionally with a
    SimpleCalorimeter library preloaded; returns (exit code, log)."""
    workdir = output.parent
    (workdir / ".rootrc").write_text(ROOTRC)
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    if preload is not None:
        env["LD_PRELOAD"] = str(preload)
    done = subprocess.run([str(delphes / "bin" / "DelphesHepMC2"), str(card), str(output), str(hepmc)],
                          cwd=workdir, env=env, capture_output=True, text=True, errors="replace", timeout=300)
    return done.returncode, done.stdout + done.stderr

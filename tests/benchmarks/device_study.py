"""Study (not a test): the workflow's training, sampling, metrics, tables and figures for many models and
several image sets at once, without Snakemake, in one command with a time budget (a lent GPU machine).

    python tests/benchmarks/device_study.py --configfile workflow/profiles/scale/scale.yaml \\
        --data default=.gpu-carry/scale/default --data correlated=.gpu-carry/scale/correlated \\
        --add-models towers_cells towers_count --seeds wgan_gp=3 --device cuda --jobs 24 --budget-s 480 --out $OUT

Each --data NAME=DIR is a regime: DIR/{signal,background}/images.h5 (the real images, with /towers for the
towers family). For every regime, sample and model (`training.run` of config.yaml merged with the
--configfile files as Snakemake merges them, plus --add-models; --models replaces the list) it runs exactly
what the workflow's rules run, with the same --config-json: `python -m model train`, `python -m model
sample`, `python -m model baseline`, `python -m analysis metrics`; then per regime `python -m analysis
results-table`, `figure2`, `figure3` (the Figure-3 models and every model), `radial-profile`. Outputs keep
the workflow's layout under --workdir/NAME/ (models/, generated/, analysis/, tables/, figures/, logs/).
--seeds MODEL=N also trains N-1 more copies of MODEL (MODEL_seed2, ...) with master seeds seed+1, ...

Jobs run as soon as their inputs exist, --jobs at a time, longest first (trainings before samplings before
metrics); each gets what is left of --budget-s less a reserve for the tables and figures, which are made
from whatever finished (a job out of time is killed and listed). --out receives at most 8 files: summary.md
(what to read first) and study.tar.gz (tables, figures, metrics records, train logs, job logs, jobs.tsv); the
models and generated images stay in --workdir (too large to bring back from a lent machine).
With --pytest ARGS the given pytest arguments run in the background meanwhile (e.g. the model tests on CUDA).
"""
from __future__ import annotations

import argparse
import copy
import os
import shlex
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from analysis.settings import READS as ANALYSIS_READS  # noqa: E402
from common.settings import check_section, schema_path, section_json  # noqa: E402
from model.settings import READS as TRAINING_READS  # noqa: E402
from model.settings import model_settings  # noqa: E402

SAMPLES = ("signal", "background")
BASELINE = "independent_pixels"
#: seconds kept back from the job phase for the tables, figures and packing
RESERVE_S = 75
#: relative cost of a training by family (longest first keeps the machine busy to the end)
TRAIN_COST = {"sarm": 6, "towers": 5, "gan": 4, "vae": 2, "decoupled": 1}


def deep_update(base: dict, extra: dict) -> dict:
    """`base` updated by `extra` recursively, as Snakemake merges a --configfile into the config."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_update(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_config(configfiles: list[Path]) -> dict:
    """config.yaml with the --configfile files merged in; training and analysis checked, defaults filled."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    for path in configfiles:
        config = deep_update(config, yaml.safe_load(Path(path).read_text()) or {})
    for section in ("training", "analysis"):
        check_section(config[section], schema_path(section), (section,))
    return config


@dataclass
class Job:
    """One command of the study: runs once its `needs` exist, writes `makes`."""

    name: str
    cmd: list[str]
    log: Path
    makes: list[Path]
    needs: list[Path] = field(default_factory=list)
    priority: float = 0.0
    proc: subprocess.Popen | None = None
    started: float = 0.0
    rc: int | str | None = None
    seconds: float = 0.0


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


class Study:
    """The jobs of every regime, sample and model, and the per-regime tables and figures."""

    def __init__(self, args: argparse.Namespace, config: dict) -> None:
        self.args, self.config = args, config
        self.training, self.analysis = config["training"], config["analysis"]
        self.seed = int(config["seed"])
        if args.device:
            self.training["device"] = args.device
        if args.n_generated:
            self.training["n_generated"] = args.n_generated
        if args.epochs:  # a dry run: every model this many epochs
            self.training["epochs"] = args.epochs
            for entry in self.training["models"].values():
                entry.pop("epochs", None)
        models = list(args.models or self.training.get("run") or self.training["models"])
        models += [m for m in args.add_models if m not in models]
        unknown = sorted(set(models) - set(self.training["models"]))
        if unknown:
            raise SystemExit(f"error: unknown model(s) {unknown}; defined: {sorted(self.training['models'])}")
        self.trained: dict[str, tuple[str, int]] = {m: (m, self.seed) for m in models}  # name -> (entry, seed)
        for spec in args.seeds:
            model, n = spec.split("=")
            if model not in self.trained:
                raise SystemExit(f"error: --seeds {spec}: {model} is not among the trained models {models}")
            for k in range(2, int(n) + 1):
                self.trained[f"{model}_seed{k}"] = (model, self.seed + k - 1)
        self.jobs: list[Job] = []

    def train_cost(self, entry: str) -> float:
        """Relative cost of training `entry` (its family's, and a GAN's by its epochs)."""
        settings = model_settings(self.training, entry)
        family = settings["family"]
        return TRAIN_COST.get(family, 1) * (settings["epochs"] / 20 if family == "gan" else 1)

    def train_settings(self, command: str, name: str, entry: str) -> str:
        return section_json(self.training, TRAINING_READS[command], models={name: self.training["models"][entry]})

    def add_regime(self, regime: str, data: Path) -> None:
        w = self.args.workdir / regime
        metrics_json = section_json(self.analysis, ANALYSIS_READS["metrics"])
        for sample in SAMPLES:
            real = data / sample / "images.h5"
            if not real.is_file():
                raise SystemExit(f"error: --data {regime}={data}: {real} does not exist")
            gen_base = w / "generated" / sample / f"{BASELINE}.h5"
            self.jobs.append(Job(
                f"{regime}/baseline/{sample}", python("-m", "model", "baseline", "--in", str(real), "--out",
                                                      str(gen_base), "--sample", sample, "--seed", str(self.seed),
                                                      "--no-progress", "--config-json",
                                                      section_json(self.training, TRAINING_READS["baseline"])),
                w / "logs" / "sample" / f"{sample}_{BASELINE}.log", [gen_base], priority=50))
            for name, (entry, seed) in [*self.trained.items(), (BASELINE, (BASELINE, self.seed))]:
                gen = w / "generated" / sample / f"{name}.h5"
                if name != BASELINE:
                    model = w / "models" / sample / name / "model.pt"
                    common = ["--model-name", name, "--sample", sample, "--seed", str(seed), "--no-progress"]
                    self.jobs.append(Job(
                        f"{regime}/train/{sample}/{name}",
                        python("-m", "model", "train", "--in", str(real), "--out", str(model), "--log-csv",
                               str(model.parent / "train_log.csv"), "--checkpoint-dir",
                               str(model.parent / "checkpoints"), *common, "--config-json",
                               self.train_settings("train", name, entry)),
                        w / "logs" / "train" / f"{sample}_{name}.log", [model],
                        priority=100 + self.train_cost(entry)))
                    self.jobs.append(Job(
                        f"{regime}/sample/{sample}/{name}",
                        python("-m", "model", "sample", "--model", str(model), "--real", str(real), "--out",
                               str(gen), *common, "--config-json", self.train_settings("sample", name, entry)),
                        w / "logs" / "sample" / f"{sample}_{name}.log", [gen], needs=[model], priority=60))
                record = w / "analysis" / sample / f"{name}.metrics.json"
                self.jobs.append(Job(
                    f"{regime}/metrics/{sample}/{name}",
                    python("-m", "analysis", "metrics", "--real", str(real), "--generated", str(gen), "--sample",
                           sample, "--model", name, "--seed", str(self.seed), "--config-json", metrics_json,
                           "--out", str(record)),
                    w / "logs" / "analysis" / f"metrics_{sample}_{name}.log", [record], needs=[gen], priority=10))

    def figure_models(self, figure: str) -> list[str]:
        """analysis.<figure>.models that this study generates (all when null), as the workflow picks them."""
        every = [*self.trained, BASELINE]
        chosen = self.analysis[figure]["models"]
        drawn = [m for m in chosen if m in every] if chosen is not None else every
        return drawn or every

    def final_jobs(self, regime: str, data: Path) -> list[Job]:
        """The tables and figures of one regime, over the records and generated files that exist now."""
        w = self.args.workdir / regime
        for folder in ("tables", "figures", "logs/analysis"):
            (w / folder).mkdir(parents=True, exist_ok=True)
        records = sorted(str(p) for p in (w / "analysis").glob("*/*.metrics.json"))
        jobs: list[Job] = []
        if records:
            cost = ["--simulation-cost", str(self.args.simulation_cost)] if self.args.simulation_cost else []
            jobs.append(Job(f"{regime}/results-table", python(
                "-m", "analysis", "results-table", "--metrics", *records, *cost, "--out-csv",
                str(w / "tables" / "results.csv"), "--out-md", str(w / "tables" / "results.md")),
                w / "logs" / "analysis" / "results_table.log", []))
        real = [f"{s}={data / s / 'images.h5'}" for s in SAMPLES]

        def generated(models: list[str]) -> list[str]:
            return [f"{s}:{m}={w / 'generated' / s / f'{m}.h5'}" for s in SAMPLES for m in models
                    if (w / "generated" / s / f"{m}.h5").is_file() and (w / "generated" / s / f"{m}.h5").stat().st_size]

        def figure(name: str, command: str, models: list[str], outputs: list[str]) -> None:
            gen = generated(models)
            if gen:
                settings = section_json(self.analysis, ANALYSIS_READS[command])
                jobs.append(Job(f"{regime}/{name}", python("-m", "analysis", command, "--real", *real,
                                                          "--generated", *gen, "--config-json", settings, *outputs),
                                w / "logs" / "analysis" / f"{name}.log", []))

        f = w / "figures"
        figure("figure2", "figure2", self.figure_models("figure2"), ["--out", str(f / "figure2_isolation.png")])
        figure3 = self.figure_models("figure3")
        figure("figure3", "figure3", figure3, ["--out-linear", str(f / "figure3_average_images_linear.png"),
                                               "--out-log", str(f / "figure3_average_images_log.png")])
        figure("average_images_all_models", "figure3", [*self.trained, BASELINE],
               ["--out-linear", str(f / "average_images_all_models_linear.png"),
                "--out-log", str(f / "average_images_all_models_log.png")])
        profile = figure3 + ([BASELINE] if BASELINE not in figure3 else [])
        figure("radial_profile", "radial-profile", profile, ["--out", str(f / "radial_profile.png")])
        return jobs


def run_jobs(jobs: list[Job], *, parallel: int, deadline: float, env: dict[str, str]) -> None:
    """Run `jobs` (each once its needs exist), `parallel` at a time, highest priority first, until `deadline`."""
    pending = sorted(jobs, key=lambda j: -j.priority)
    producer = {path: job for job in jobs for path in job.makes}
    running: list[Job] = []
    while pending or running:
        now = time.monotonic()
        for job in list(running):
            rc = job.proc.poll()
            if rc is None and now < deadline:
                continue
            if rc is None:
                job.proc.kill()
                job.proc.wait()
                rc = "timeout"
            job.rc, job.seconds = rc, now - job.started
            running.remove(job)
            print(f"[{time.strftime('%H:%M:%S')}] {job.name}: rc={rc} ({job.seconds:.0f} s)", flush=True)
        ready = []
        for job in list(pending):
            inputs = [producer.get(path) for path in job.needs]
            if any(j is not None and j.rc not in (None, 0) for j in inputs):
                job.rc = "skipped (an input failed)"
            elif now >= deadline:
                job.rc = "skipped (no time left)"
            elif all(j is None or j.rc == 0 for j in inputs) and all(path.is_file() for path in job.needs):
                ready.append(job)
                continue
            else:
                continue
            pending.remove(job)
        for job in ready[:max(0, parallel - len(running))]:
            job.log.parent.mkdir(parents=True, exist_ok=True)
            for p in job.makes:
                p.parent.mkdir(parents=True, exist_ok=True)
            with open(job.log, "w") as log:
                job.proc = subprocess.Popen(job.cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
            job.started = time.monotonic()
            pending.remove(job)
            running.append(job)
        time.sleep(0.2)


def pack(study: Study, out: Path, t0: float, pytest_log: Path | None) -> None:
    """summary.md and study.tar.gz into `out`."""
    w = study.args.workdir
    out.mkdir(parents=True, exist_ok=True)
    table = w / "jobs.tsv"
    with open(table, "w") as f:
        f.write("job\trc\tseconds\n")
        for j in study.jobs:
            f.write(f"{j.name}\t{j.rc}\t{j.seconds:.1f}\n")
    with tarfile.open(out / "study.tar.gz", "w:gz") as tar:  # jobs.tsv and pytest.log are in w too
        for p in sorted(w.rglob("*")):
            rel = p.relative_to(w)
            if p.is_file() and rel.parts[1:2] != ("generated",) and "checkpoints" not in rel.parts \
                    and p.suffix != ".pt":
                tar.add(p, str(rel))
    failed = [j for j in study.jobs if j.rc != 0]
    lines = [f"# device study ({time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}, "
             f"{time.monotonic() - t0:.0f} s)", "", "```", " ".join(map(shlex.quote, sys.argv)), "```", "",
             f"{len(study.jobs)} jobs, {len(failed)} not done (rc != 0):", ""]
    lines += [f"- {j.name}: rc={j.rc} ({j.seconds:.0f} s); log {j.log.relative_to(w)}" for j in failed]
    by_kind: dict[str, list[float]] = {}
    for j in study.jobs:
        if j.rc == 0:
            by_kind.setdefault(j.name.split("/")[1], []).append(j.seconds)
    lines += ["", "| step | jobs done | total [s] | longest [s] |", "|---|---|---|---|"]
    lines += [f"| {k} | {len(v)} | {sum(v):.0f} | {max(v):.0f} |" for k, v in sorted(by_kind.items())]
    for regime in study.args.data:
        md = w / regime.split("=")[0] / "tables" / "results.md"
        if md.exists():
            lines += ["", f"## {regime.split('=')[0]}", "", md.read_text()]
    if pytest_log and pytest_log.exists():
        lines += ["", "## pytest (tail)", "", "```", *pytest_log.read_text().splitlines()[-25:], "```"]
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:12 + len(failed)]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--data", action="append", required=True, metavar="NAME=DIR",
                   help="a regime: DIR/{signal,background}/images.h5 (repeat for more)")
    p.add_argument("--configfile", action="append", type=Path, default=[],
                   help="config files merged over config.yaml, in order (as snakemake --configfile)")
    p.add_argument("--models", nargs="+", default=None, help="models to train (default: training.run)")
    p.add_argument("--add-models", nargs="+", default=[], help="models trained as well")
    p.add_argument("--seeds", nargs="+", default=[], metavar="MODEL=N", help="train MODEL with N master seeds")
    p.add_argument("--device", default=None, help="training.device for every model (cuda, cpu, auto)")
    p.add_argument("--n-generated", type=int, default=None, help="training.n_generated (default: the config's)")
    p.add_argument("--epochs", type=int, default=None, help="every model this many epochs (a dry run)")
    p.add_argument("--simulation-cost", type=Path, default=None, help="simulation_cost.json for the results table")
    p.add_argument("--jobs", type=int, default=max(1, os.cpu_count() or 1), help="jobs at a time")
    p.add_argument("--budget-s", type=float, default=480.0, help="seconds for everything, packing included")
    p.add_argument("--workdir", type=Path, default=None, help="outputs (default: a temporary folder)")
    p.add_argument("--out", type=Path, required=True, help="folder for summary.md and study.tar.gz")
    p.add_argument("--pytest", default=None, help="pytest arguments to run in the background meanwhile")
    args = p.parse_args(argv)
    t0 = time.monotonic()
    args.workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="device-study."))).resolve()
    args.workdir.mkdir(parents=True, exist_ok=True)
    study = Study(args, load_config(args.configfile))
    regimes = []
    for spec in args.data:
        name, _, folder = spec.partition("=")
        regimes.append((name, Path(folder).resolve()))
        study.add_regime(name, Path(folder).resolve())
    print(f"{len(study.jobs)} jobs: models {list(study.trained)}; regimes {[r for r, _ in regimes]}; "
          f"workdir {args.workdir}", flush=True)
    # one thread per job: the jobs share the machine's cores
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    pytest_proc, pytest_log = None, None
    if args.pytest:
        pytest_log = args.workdir / "pytest.log"
        with open(pytest_log, "w") as log:
            pytest_proc = subprocess.Popen(python("-m", "pytest", *shlex.split(args.pytest)), cwd=ROOT, stdout=log,
                                           stderr=subprocess.STDOUT, env={**env, "OMP_NUM_THREADS": "2"})
    deadline = t0 + args.budget_s
    run_jobs(study.jobs, parallel=args.jobs, deadline=deadline - RESERVE_S, env=env)
    final = [job for name, data in regimes for job in study.final_jobs(name, data)]
    study.jobs += final
    run_jobs(final, parallel=args.jobs, deadline=deadline - 10, env=env)
    if pytest_proc is not None and pytest_proc.poll() is None:
        pytest_proc.kill()
        with open(pytest_log, "a") as log:
            log.write("\n(stopped: out of time)\n")
    pack(study, args.out, t0, pytest_log)
    return 0


if __name__ == "__main__":
    sys.exit(main())

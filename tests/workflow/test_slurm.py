"""The pipeline on a real SLURM cluster: the one-node cluster with accounting that
envs/slurm_local.sh starts (slurmctld, slurmd, slurmdbd + MariaDB), the tiny config through
workflow/profiles/slurm (snakemake-executor-plugin-slurm), and `sacct` as the witness.

- every job of a non-local rule ran as its own SLURM job, COMPLETED, with the memory, time
  limit, CPUs, account and partition the job declared (sacct: job name = the run's ID,
  comment = rule_<rule>_wildcards_<values>, both written by the plugin);
- the outputs equal those of a local run of the same config: real and generated images bit
  for bit, the same HDF5 schemas, the same tables (except training-time columns);
- a job that fails (an unknown matplotlib colour map in analysis.figure3.cmap: a user's typo
  that no config check can see) is FAILED in sacct, its rule is named in Snakemake's error,
  the run exits non-zero, and the jobs that do not depend on it still complete;
- resubmitting with the corrected config submits that one job again and nothing else, here
  with account and partition given as `--default-resources` on the command line;
- training.gpus > 0 reaches sbatch as --gpus (the GPU-less test node then rejects the job).

Skipped only where it cannot run at all: not root, or neither SLURM nor apt-get to install it,
or a SLURM set-up of the machine's own. SLURM_TEST_JOBS (default 2) sets the jobs in flight.
"""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import h5py
import numpy as np
import pytest
from test_end_to_end import PROJECT_DIR, SAMPLES, TINY_CONFIG, snakemake

from imaging.h5schema import read_image_file

pytestmark = pytest.mark.slow

SCRIPT = PROJECT_DIR / "envs" / "slurm_local.sh"
PROFILE = PROJECT_DIR / "workflow" / "profiles" / "slurm"
ACCOUNT, PARTITION = "pipeline", "local"
JOBS = os.environ.get("SLURM_TEST_JOBS", "2")
#: the rules the workflow declares `localrules:` (targets and table merges): run by Snakemake itself
LOCAL_RULES = {"all", "analysis_emd_table", "analysis_metrics_table", "analysis_results_table",
               "analysis_simulation_cost"}
#: the failing job: a colour map matplotlib does not know makes `analysis figure3` exit non-zero
#: the rules that draw average images with analysis.figure3.cmap: a bad colour map fails both
FAILING_RULES = ("analysis_average_images_all_models", "analysis_figure3")
#: plugin options of the test runs: status checks 2 s after submission (default 40 s)
FAST_STATUS = ("--slurm-init-seconds-before-status-checks", "2")


def _config(**analysis) -> dict:
    """TINY_CONFIG with one trained model (plus the baseline): 21 SLURM jobs."""
    config = json.loads(json.dumps(TINY_CONFIG))
    config["training"]["run"] = ["decoupled_fc"]
    config["analysis"].update(analysis)
    return config


GOOD, FAILING = _config(), _config(figure3={"cmap": "no_such_colour_map"})


@pytest.fixture(scope="module")
def cluster():
    """The one-node cluster, started by envs/slurm_local.sh; stopped at the end (also on failure)
    unless it was already up before."""
    if os.geteuid() != 0:
        pytest.skip("the SLURM test needs root: envs/slurm_local.sh installs packages and starts daemons")
    if shutil.which("sbatch") is None and shutil.which("apt-get") is None:
        pytest.skip("neither SLURM (sbatch) nor apt-get to install it is on this machine")
    conf = Path("/etc/slurm/slurm.conf")
    if conf.exists() and "envs/slurm_local.sh" not in conf.read_text():
        pytest.skip(f"{conf} belongs to this machine's own SLURM set-up; the test does not replace it")
    env = {**os.environ, "SLURM_LOCAL_ACCOUNT": ACCOUNT, "SLURM_LOCAL_PARTITION": PARTITION}
    was_up = subprocess.run([str(SCRIPT), "status"], capture_output=True, env=env).returncode == 0
    t0 = time.monotonic()
    start = subprocess.run([str(SCRIPT), "start"], capture_output=True, text=True, env=env, timeout=900)
    if start.returncode != 0:
        subprocess.run([str(SCRIPT), "stop"], capture_output=True, env=env)
        pytest.fail(f"envs/slurm_local.sh start failed (exit {start.returncode}):\n{start.stdout}\n{start.stderr}")
    print(f"[slurm] cluster up in {time.monotonic() - t0:.1f} s")
    yield
    if not was_up:
        stop = subprocess.run([str(SCRIPT), "stop"], capture_output=True, text=True, env=env, timeout=300)
        assert stop.returncode == 0, stop.stdout + stop.stderr


@pytest.fixture(scope="module")
def job_env(cluster, delphes) -> dict:
    """What a user's shell has: the venv on PATH (the jobs run `snakemake`) and DELPHES_DIR."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SBATCH_", "SLURM_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["DELPHES_DIR"] = str(delphes)
    return env


def _ok(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, proc.stdout[-6000:] + "\n" + proc.stderr[-6000:]


def _jobs(output: str) -> list[dict]:
    """Snakemake's job blocks (`rule X:` / `localrule X:` + indented lines), in printed order."""
    jobs, job = [], None
    for line in output.splitlines():
        m = re.match(r"^(local)?rule (\w+):$", line)
        if m:
            job = {"local": bool(m.group(1)), "rule": m.group(2), "wildcards": "", "resources": {}, "threads": 1}
            jobs.append(job)
        elif job is not None and line.startswith("    "):
            key, _, value = line.strip().partition(": ")
            if key == "wildcards":  # sample=signal, chunk=0 -> signal_0 (the plugin's comment)
                job["wildcards"] = "_".join(v.split("=", 1)[1] for v in value.split(", "))
            elif key == "resources":
                job["resources"] = dict(v.split("=", 1) for v in value.split(", "))
            elif key == "threads":
                job["threads"] = int(value)
        else:
            job = None
    return jobs


def _sacct(run_id: str) -> list[dict]:
    """sacct's record of every SLURM job of one Snakemake run (job name = the plugin's run ID)."""
    fields = ["JobID", "State", "ExitCode", "Comment", "Account", "Partition", "ReqMem", "Timelimit",
              "AllocCPUS", "Submit", "Start", "End", "ElapsedRaw"]
    out = subprocess.run(["sacct", "-X", "-P", "-n", "--name", run_id, "-S", "now-2days", "-E", "now",
                          "-o", ",".join(fields)], capture_output=True, text=True, check=True).stdout
    rows = [dict(zip(fields, line.split("|"), strict=True)) for line in out.splitlines() if line.strip()]
    for row in rows:
        m = re.fullmatch(r"rule_(\w+?)(?:_wildcards_(.*))?", row["Comment"])
        assert m, f"SLURM job {row['JobID']} has comment {row['Comment']!r}, not rule_<rule>_wildcards_<...>"
        row["rule"], row["wildcards"] = m.group(1), m.group(2) or ""
    return rows


def _run_id(output: str) -> str:
    m = re.search(r"SLURM run ID: (\S+)", output)
    assert m, "no 'SLURM run ID' in Snakemake's output: the SLURM executor did not run\n" + output[-3000:]
    return m.group(1)


def _timelimit(minutes: int) -> str:
    """sacct's Timelimit for a runtime in minutes: [D-]HH:MM:SS."""
    days, rest = divmod(int(minutes), 24 * 60)
    hhmmss = f"{rest // 60:02d}:{rest % 60:02d}:00"
    return f"{days}-{hhmmss}" if days else hhmmss


def _slurm(workdir: Path, env: dict, config: dict, *args: str) -> subprocess.CompletedProcess:
    """The project's workflow through the SLURM profile, under `timeout -k` (the plugin can hang)."""
    return snakemake(workdir, "--profile", str(PROFILE), "--cores", JOBS, "--jobs", JOBS, *FAST_STATUS, *args,
                     config=config, env=env, timeout=1500, kill_after=30)


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, job_env) -> dict:
    """The reference: the same config (without the failure) with Snakemake's local executor."""
    workdir = tmp_path_factory.mktemp("slurm_reference")
    proc = snakemake(workdir, "--cores", JOBS, config=GOOD, env=job_env)
    _ok(proc)
    return {"results": workdir / "results", "jobs": _jobs(proc.stdout + proc.stderr)}


@pytest.fixture(scope="module")
def slurm_runs(tmp_path_factory, job_env) -> dict:
    """Run 1: the failing config (account/partition from SBATCH_*); run 2: the corrected config
    (account/partition from --default-resources)."""
    workdir = tmp_path_factory.mktemp("slurm_run")
    t0 = time.monotonic()
    first = _slurm(workdir, {**job_env, "SBATCH_ACCOUNT": ACCOUNT, "SBATCH_PARTITION": PARTITION}, FAILING)
    failing_log = (workdir / "results" / "logs" / "analysis" / "figure3.log").read_text()  # run 2 rewrites it
    t1 = time.monotonic()
    second = _slurm(workdir, job_env, GOOD, "--default-resources", f"slurm_account={ACCOUNT}",
                    f"slurm_partition={PARTITION}")
    t2 = time.monotonic()
    runs = {"workdir": workdir, "results": workdir / "results", "failing_log": failing_log}
    for name, proc, seconds in (("first", first, t1 - t0), ("second", second, t2 - t1)):
        output = proc.stdout + proc.stderr
        runs[name] = {"rc": proc.returncode, "output": output, "seconds": seconds, "jobs": _jobs(output),
                      "sacct": _sacct(_run_id(output))}
    _print_overhead(runs)
    return runs


def _print_overhead(runs: dict) -> None:
    """Per-job cost of SLURM on this node (pytest -s shows it; docs/cluster.md quotes it)."""
    done = [r for r in runs["first"]["sacct"] + runs["second"]["sacct"] if r["State"] == "COMPLETED"]
    bench = [float(next(csv.DictReader(p.open(), delimiter="\t"))["s"])
             for p in runs["results"].glob("benchmarks/**/*.tsv")]
    submits = sorted(datetime.fromisoformat(r["Submit"]) for r in runs["first"]["sacct"])
    gaps = [(b - a).total_seconds() for a, b in zip(submits, submits[1:], strict=False)]
    elapsed = [int(r["ElapsedRaw"]) for r in done]
    print(f"[slurm] run 1: {len(runs['first']['sacct'])} SLURM jobs in {runs['first']['seconds']:.0f} s, "
          f"run 2: {len(runs['second']['sacct'])} in {runs['second']['seconds']:.0f} s (--jobs {JOBS}); "
          f"per completed job: {np.mean(elapsed):.1f} s in SLURM (sacct Elapsed) vs {np.mean(bench):.1f} s "
          f"of the rule's own command (benchmark files, {len(bench)}), "
          f"{np.mean(gaps) if gaps else float('nan'):.1f} s between submissions")


def test_every_job_ran_as_its_own_slurm_job(slurm_runs, local_run):
    first, second = slurm_runs["first"], slurm_runs["second"]
    # what the local run did, less the declared local rules = what SLURM had to run, once each
    expected = Counter((j["rule"], j["wildcards"]) for j in local_run["jobs"] if j["rule"] not in LOCAL_RULES)
    assert expected and all(n == 1 for n in expected.values()), expected
    ran_locally = {j["rule"] for run in (first, second) for j in run["jobs"] if j["local"]}
    assert ran_locally <= LOCAL_RULES, \
        f"jobs that Snakemake ran itself instead of submitting: {ran_locally - LOCAL_RULES}"

    completed = Counter((r["rule"], r["wildcards"]) for run in (first, second) for r in run["sacct"]
                        if r["State"] == "COMPLETED")
    assert completed == expected, (
        f"SLURM jobs (sacct, COMPLETED) differ from the workflow's jobs:\n missing: {expected - completed}\n"
        f" extra: {completed - expected}")

    # each SLURM job got what its Snakemake job declared, account and partition included
    declared = {(j["rule"], j["wildcards"]): j for run in (first, second) for j in run["jobs"] if not j["local"]}
    for row in first["sacct"] + second["sacct"]:
        job = declared[(row["rule"], row["wildcards"])]
        res = job["resources"]
        what = f"SLURM job {row['JobID']} ({row['Comment']})"
        assert row["ReqMem"] == f"{res['mem_mb']}M", (what, row["ReqMem"], res)
        assert row["Timelimit"] == _timelimit(int(res["runtime"])), (what, row["Timelimit"], res)
        assert int(row["AllocCPUS"]) == job["threads"], (what, row["AllocCPUS"])
        assert (row["Account"], row["Partition"]) == (ACCOUNT, PARTITION), (what, row["Account"], row["Partition"])


def test_outputs_equal_the_local_run(slurm_runs, local_run):
    ref, new = local_run["results"], slurm_runs["results"]
    for sample in SAMPLES:
        _assert_same_images(ref / sample / "images.h5", new / sample / "images.h5")
        generated = sorted(p.name for p in (ref / "generated" / sample).glob("*.h5"))
        assert generated == sorted(p.name for p in (new / "generated" / sample).glob("*.h5")) == \
            ["decoupled_fc.h5", "independent_pixels.h5"]
        for name in generated:
            _assert_same_images(ref / "generated" / sample / name, new / "generated" / sample / name)
    tables = sorted(p.name for p in (ref / "tables").glob("*.csv"))
    assert tables == ["isolation_emd.csv", "metrics.csv", "results.csv"]
    for name in tables:
        assert _table(ref / "tables" / name) == _table(new / "tables" / name), name
    figures = sorted(p.relative_to(ref).as_posix() for p in (ref / "figures").glob("*"))
    assert figures == sorted(p.relative_to(new).as_posix() for p in (new / "figures").glob("*")) and figures


def _assert_same_images(a: Path, b: Path) -> None:
    """Same arrays bit for bit and the same HDF5 layout (datasets, dtypes, shapes, attributes)."""
    assert _h5_schema(a) == _h5_schema(b), (a, b)
    x, y = read_image_file(a), read_image_file(b)
    for field in ("images", "muon_pt", "muon_eta", "muon_phi", "muon_charge", "weight"):
        np.testing.assert_array_equal(getattr(x, field), getattr(y, field), err_msg=f"{b}: {field}")
    assert len(x) > 0


def _h5_schema(path: Path) -> dict:
    with h5py.File(path, "r") as f:
        layout = {"attrs": sorted(f.attrs)}
        f.visititems(lambda name, obj: layout.__setitem__(name, (str(obj.dtype), obj.shape)
                                                          if isinstance(obj, h5py.Dataset) else "group"))
    return layout


#: columns measured in seconds, or computed from such measurements, differ from run to run: training
#: time, the classifiers' and FPD/KPD's own time, the sampling cost and the speed-ups made from it
TIMING_COLUMNS = re.compile(r"time|seconds|_s$|_us_|sampling_|speedup|simulation_cpu")


def _table(path: Path) -> list[dict]:
    """A results table without its timing columns."""
    with path.open() as f:
        return [{k: v for k, v in row.items() if not TIMING_COLUMNS.search(k)} for row in csv.DictReader(f)]


def test_failed_job_is_reported_and_the_resubmission_redoes_nothing_else(slurm_runs):
    first, second = slurm_runs["first"], slurm_runs["second"]
    assert first["rc"] != 0, "Snakemake exited 0 although a SLURM job failed"
    failed = [r for r in first["sacct"] if r["State"] != "COMPLETED"]
    # (the profile retries a failed job once: each rule may appear twice)
    assert {(r["rule"], r["State"]) for r in failed} == {(rule, "FAILED") for rule in FAILING_RULES}, failed
    assert all(r["ExitCode"] != "0:0" for r in failed)
    for row in failed:
        assert f"Error in rule {row['rule']}:" in first["output"]
        assert f"SLURM-job '{row['JobID']}' failed, SLURM status is: 'FAILED'" in first["output"]
    assert "no_such_colour_map" in slurm_runs["failing_log"], slurm_runs["failing_log"][-2000:]

    # the resubmission: exactly the failed jobs, nothing that had finished
    assert second["rc"] == 0, second["output"][-6000:]
    assert sorted((r["rule"], r["State"]) for r in second["sacct"]) == \
        [(rule, "COMPLETED") for rule in FAILING_RULES], second["sacct"]


def test_gpu_request_reaches_sbatch(local_run, job_env, tmp_path):
    """training.gpus: 1 -> `--gpus=1` on the training job's sbatch call; this node has no GPU
    (no Gres configured), so SLURM rejects it: proof that the request reached SLURM."""
    images = tmp_path / "results" / "background" / "images.h5"
    images.parent.mkdir(parents=True)
    shutil.copy2(local_run["results"] / "background" / "images.h5", images)
    config = _config()
    config["training"]["gpus"] = 1
    target = "results/models/background/decoupled_fc/model.pt"
    proc = _slurm(tmp_path, {**job_env, "SBATCH_ACCOUNT": ACCOUNT, "SBATCH_PARTITION": PARTITION}, config, target)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-3000:]
    calls = [line for line in output.splitlines() if line.strip().startswith("sbatch --")]
    assert calls and all("--gpus=1" in c and "rule_train_model_wildcards_background_decoupled_fc" in c
                         for c in calls), output[-3000:]
    assert "Invalid generic resource (gres) specification" in output, output[-3000:]

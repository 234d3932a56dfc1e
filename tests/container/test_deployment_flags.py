"""Which image and which Python each rule gets, for each way of starting the workflow (issue 26).

`snakemake --cores 16 --use-singularity` must work as typed after `make setup`: the MadGraph,
Pythia and Delphes rules run in `simulation.container.image`, the Python stages on this machine
in the Python that runs Snakemake. `--use-singularity --use-conda` puts the Python stages in
envs/pipeline.yaml inside `simulation.container.python_image`; neither flag runs everything on
this machine (native backend); `--use-conda` alone uses envs/pipeline.yaml here. The paper
profile is `--cores 16 --use-singularity` plus settings. Each combination is the workflow's own
dry run (software_plan.py: what Snakemake resolved per job) with stand-in apptainer and conda
that only answer Snakemake's questions (conftest.fake_runtime); the Python that a stage's
command calls is found by running Snakemake's shell prefix with that command's interpreter.
"""
from __future__ import annotations

import json
import shlex
import subprocess
import sys

import pytest
import yaml
from container_helpers import PROJECT_DIR

pytestmark = pytest.mark.slow  # one Snakemake dry run per combination

PROFILES = PROJECT_DIR / "workflow" / "profiles"
CT_SCHEMA = yaml.safe_load((PROJECT_DIR / "simulation" / "container" / "config.schema.yaml").read_text())
IMAGE = CT_SCHEMA["properties"]["image"]["default"]  # MadGraph + Pythia + Delphes
PYTHON_IMAGE = CT_SCHEMA["properties"]["python_image"]["default"]  # conda base image
CONDA_ENV = str(PROJECT_DIR / "envs" / "pipeline.yaml")
#: the rules that run programs of the simulation image (the container backend)
IMAGE_RULES = {"container_mg5_gridpack", "container_lhe", "container_shower_delphes", "container_pileup_library"}

COMBINATIONS = {
    "neither": ["--cores", "16"],
    "singularity": ["--cores", "16", "--use-singularity"],
    "singularity+conda": ["--cores", "16", "--use-singularity", "--use-conda"],
    "conda": ["--cores", "16", "--use-conda"],
    "paper": ["--profile", str(PROFILES / "paper")],
}
CONTAINERS = {"singularity", "singularity+conda", "paper"}
CONDA = {"singularity+conda", "conda"}


@pytest.fixture(scope="module")
def plans(tmp_path_factory, fake_runtime) -> dict[str, dict]:
    """combination -> the dry run's plan (software_plan.py) and its log."""
    result = {}
    for name, args in COMBINATIONS.items():
        workdir = tmp_path_factory.mktemp(name.replace("+", "_"))
        out = workdir / "plan.json"
        proc = subprocess.run(
            [sys.executable, str(PROJECT_DIR / "tests" / "container" / "software_plan.py"), str(out), *args,
             "--snakefile", str(PROJECT_DIR / "Snakefile"), "--directory", str(workdir)],
            capture_output=True, text=True, timeout=600, env=fake_runtime, cwd=workdir)
        log = proc.stdout + proc.stderr
        assert proc.returncode == 0, f"{name}: {log[-4000:]}"
        result[name] = {**json.loads(out.read_text()), "log": log}
    return result


def _commands(plan):
    return [job for job in plan["jobs"] if job["command"]]


def _interpreter(prefix: str, word: str) -> str:
    """What a command's first word `word` is after Snakemake's shell prefix: the executable that
    `python -m ...` runs when the prefix makes `python` a function, else `not a function`."""
    script = f'{prefix} if [ "$(type -t {word})" = function ]; then {word} -c "import sys; print(sys.executable)"; ' \
             'else echo "not a function"; fi'
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, check=True).stdout.strip()


@pytest.mark.parametrize("name", list(COMBINATIONS))
def test_each_rule_gets_its_image_and_environment(plans, name):
    plan = plans[name]
    jobs = _commands(plan)
    rules = {job["rule"] for job in jobs}
    containers, conda = name in CONTAINERS, name in CONDA
    # backend auto: the container backend exactly when containers are on
    assert ("container_shower_delphes" in rules) == containers and ("simulate_chunk" in rules) != containers
    assert ("APPTAINER" in plan["methods"]) == containers and ("CONDA" in plan["methods"]) == conda
    for job in jobs:
        if job["rule"] in IMAGE_RULES:
            assert job["image"] == IMAGE and job["conda_env"] is None, job
            assert not job["command"].startswith("python"), job
            continue
        # every other rule is a Python stage: `python -m <package>` of the project, envs/pipeline.yaml
        assert job["command"].startswith("python -m "), job
        assert job["image"] == (PYTHON_IMAGE if containers and conda else None), job
        assert job["conda_env"] == (CONDA_ENV if conda else None), job
        assert job["conda_env_image"] == (PYTHON_IMAGE if containers and conda else None), job
    assert rules >= {"build_images", "train_model", "sample_model", "analysis_metrics", "analysis_figure2"}
    if containers:
        assert rules >= IMAGE_RULES | {"container_mg5_script", "container_shower_card", "container_delphes_card",
                                       "container_minbias_hepmc"}
        # MadGraph writes next to its installation: a writable overlay without being asked for it
        assert "--writable-tmpfs" in plan["apptainer_args"].split()


@pytest.mark.parametrize("name", list(COMBINATIONS))
def test_which_python_runs_the_python_stages(plans, name):
    plan = plans[name]
    words = {shlex.split(job["command"])[0] for job in _commands(plan) if job["rule"] not in IMAGE_RULES}
    assert words == {"python"}
    found = {_interpreter(plan["prefix"], word) for word in words}
    if name in CONDA:
        # the environment's own python: Snakemake activates envs/pipeline.yaml before the command
        assert found == {"not a function"}
    else:
        # the Python that runs Snakemake (here: this test's interpreter), also under --use-singularity
        assert found == {sys.executable}


@pytest.mark.parametrize("name", list(COMBINATIONS))
def test_no_warning_asks_for_another_flag_and_only_used_images_are_pulled(plans, name):
    plan = plans[name]
    log = plan["log"].split("Building DAG of jobs...")[1]  # after Snakemake's echo of the command line
    assert "--use-conda" not in log and "--sdm" not in log, log[:3000]
    pulled = {line.split()[2] for line in log.splitlines() if line.startswith("Singularity image ")}
    expected = {IMAGE, PYTHON_IMAGE} if name == "singularity+conda" else {IMAGE} if name in CONTAINERS else set()
    assert pulled == expected
    created = [line for line in log.splitlines() if line.startswith("Conda environment ")]
    assert created == ([f"Conda environment {CONDA_ENV} will be created."] if name in CONDA else [])
    # the workflow says where the Python stages run whenever a deployment flag is given
    where = {"singularity": f"on this machine with {sys.executable}, no container",
             "paper": f"on this machine with {sys.executable}, no container",
             "singularity+conda": f"in envs/pipeline.yaml inside {PYTHON_IMAGE}",
             "conda": "in envs/pipeline.yaml"}
    if name in where:
        assert f"Python stages run {where[name]} (envs/containers.md)." in plan["log"]


def test_paper_profile_adds_settings_only(plans):
    """The paper profile is `--cores 16 --use-singularity` at paper scale: every rule gets the same
    image, environment and Python as under that command; only the number of chunks differs."""
    profile = yaml.safe_load((PROFILES / "paper" / "config.yaml").read_text())
    assert profile["software-deployment-method"] == ["apptainer"] and profile["cores"] == 16
    paper, plain = plans["paper"], plans["singularity"]
    assert paper["methods"] == plain["methods"] == ["APPTAINER"] and paper["prefix"] == plain["prefix"]

    def software(plan):
        return {(job["rule"], job["image"], job["conda_env"], job["command"].split()[0]) for job in _commands(plan)}

    assert software(paper) == software(plain)
    chunks = yaml.safe_load((PROFILES / "paper" / "paper.yaml").read_text())["simulation"]
    per_sample = -(-chunks["events_per_sample"] // chunks["events_per_chunk"])
    assert sum(job["rule"] == "container_shower_delphes" for job in paper["jobs"]) == 2 * per_sample


def test_a_python_stage_really_runs_on_the_host_under_use_singularity(tmp_path, fake_runtime):
    """Not a dry run: `--use-singularity` runs the MadGraph command-file rule (a Python stage) and
    no container; the stand-in apptainer fails anything but a version query, so any attempt to
    pull an image or run the job in one fails the run."""
    target = "results/signal/madgraph/gridpack.mg5"  # (relative to the working directory)
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "1", "--use-singularity", target,
         "--snakefile", str(PROJECT_DIR / "Snakefile"), "--directory", str(tmp_path)],
        capture_output=True, text=True, timeout=600, env=fake_runtime, cwd=tmp_path)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert "stand-in" not in output and "Activating singularity image" not in output
    script = (tmp_path / target).read_text()
    assert "output" in script and "launch" in script

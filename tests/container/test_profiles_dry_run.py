"""`snakemake -n` resolves the whole workflow for every profile and both simulation backends,
and the container rules' shell commands carry the image's programs, the cards and the seeds.

No container runtime exists here: a stand-in `apptainer` that only answers Snakemake's
questions (conftest.fake_runtime) lets Snakemake plan the run (a dry run pulls and executes
nothing). The slurm profile runs with `--sdm apptainer` (docs/cluster.md); which rule runs in
which image under which flags: test_deployment_flags.py.
"""
from __future__ import annotations

import math
import re
from collections import defaultdict

import pytest
import yaml
from container_helpers import PROJECT_DIR, snakemake

from common.seeds import chunk_seed

pytestmark = pytest.mark.slow

PROFILES = PROJECT_DIR / "workflow" / "profiles"
CT_SCHEMA = yaml.safe_load((PROJECT_DIR / "simulation" / "container" / "config.schema.yaml").read_text())
DEFAULT = {k: v["default"] for k, v in CT_SCHEMA["properties"].items() if not isinstance(v["default"], dict)}


def _dry(tmp_path, profile, backend, env, *extra):
    args = ["-n", "-p", "--profile", str(PROFILES / profile), "--config", f"simulation={{backend: {backend}}}"]
    if profile == "slurm":  # the slurm profile sets no deployment method: containers as docs/cluster.md runs them
        args += ["--sdm", "apptainer"]
    proc = snakemake(tmp_path, *extra, *args, env=env)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc.stdout + proc.stderr


def _job_counts(output):
    table = output[output.rindex("Job stats:"):]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, flags=re.M)}


def _shell_commands(output):
    """rule name -> shell commands Snakemake would run (from `-p` output)."""
    commands, rule = defaultdict(list), None
    for line in output.splitlines():
        m = re.match(r"^(?:local)?rule (\w+):", line)
        if m:
            rule = m.group(1)
        elif line.startswith("Shell command: ") and rule:
            commands[rule].append(line[len("Shell command: "):])
    return commands


def _scale(profile):
    config = yaml.safe_load((PROJECT_DIR / "config.yaml").read_text())
    if profile == "paper":  # the slurm profile sets no config file: config.yaml's scale
        config["simulation"].update(yaml.safe_load((PROFILES / "paper" / "paper.yaml").read_text())["simulation"])
    sim = yaml.safe_load((PROJECT_DIR / "workflow" / "schemas" / "simulation.schema.yaml").read_text())["properties"]
    per_sample = config["simulation"].get("events_per_sample", sim["events_per_sample"]["default"])
    per_chunk = config["simulation"].get("events_per_chunk", sim["events_per_chunk"]["default"])
    return math.ceil(per_sample / per_chunk) * len(config["samples"])


@pytest.mark.parametrize("backend", ["native", "container"])
@pytest.mark.parametrize("profile", ["local", "paper", "slurm"])
def test_full_dag_resolves(tmp_path, fake_runtime, profile, backend):
    output = _dry(tmp_path, profile, backend, fake_runtime)
    jobs = _job_counts(output)
    chunk_rule = "container_shower_delphes" if backend == "container" else "simulate_chunk"
    assert jobs.get(chunk_rule) == _scale(profile), jobs
    other = "simulate_chunk" if backend == "container" else "container_shower_delphes"
    assert other not in jobs
    if backend == "container":
        assert jobs["container_mg5_gridpack"] == 2 and jobs["container_pileup_library"] == 1
    if profile != "local" and backend == "container":
        assert f"Singularity image {DEFAULT['image']} will be pulled" in output


def test_paper_profile_is_16_cores_apptainer_and_100k_images():
    profile = yaml.safe_load((PROFILES / "paper" / "config.yaml").read_text())
    # = `snakemake --cores 16 --use-singularity` + paper.yaml (settings only; no conda to install)
    assert profile["cores"] == 16 and profile["software-deployment-method"] == ["apptainer"]
    paper = yaml.safe_load((PROFILES / "paper" / "paper.yaml").read_text())["simulation"]
    assert paper["backend"] == "container" and paper["mean_pileup"] == 50
    assert paper["events_per_sample"] * 0.569 >= 100_000     # 0.569 background images per kept event (scale study)
    slurm = yaml.safe_load((PROFILES / "slurm" / "config.yaml").read_text())
    assert slurm["executor"] == "slurm"
    # Keys a user's --sdm/--configfile/--set-resources would replace whole: the rules carry their
    # resources, the config is the user's, containers are opt-in (docs/cluster.md)
    for key in ("software-deployment-method", "configfile", "set-resources", "set-threads"):
        assert key not in slurm, key


def test_container_commands_use_the_image_cards_and_native_seeds(tmp_path, fake_runtime):
    seed = 20191214
    output = _dry(tmp_path, "paper", "container", fake_runtime, "simulate")
    cmds = _shell_commands(output)
    gridpack = cmds["container_mg5_gridpack"]
    assert len(gridpack) == 2 and all(c.split("&&")[1].split()[0] == DEFAULT["mg5"] for c in gridpack)
    assert all("run_01_gridpack.tar.gz" in c for c in gridpack)
    assert any("mg5-script --sample signal" in c and "--nb-core 16" in c for c in cmds["container_mg5_script"])

    def one(rule, sample, chunk):
        (cmd,) = [c for c in cmds[rule] if f"/{sample}/" in c and (f"chunk{chunk}." in c or f"chunk{chunk}/" in c)]
        return cmd

    for sample in ("signal", "background"):
        for chunk in (0, 49):
            lhe = one("container_lhe", sample, chunk).split()
            assert lhe[1].endswith("simulation/container/gridpack_events.sh")
            assert lhe[4] == str(chunk_seed(seed, sample, chunk, "madgraph"))
            card = one("container_shower_card", sample, chunk)
            assert f"--seed {chunk_seed(seed, sample, chunk, 'pythia')} " in card
            assert "--hepmc /dev/fd/3" in card
            delphes_card = one("container_delphes_card", sample, chunk)
            # the native backend's Delphes seed for this chunk (simulation.chunk.ChunkSpec.delphes_seed)
            assert f"--seed {chunk_seed(seed, sample, chunk, 'delphes')} " in delphes_card
            assert "delphes_card_CMS_PileUp_muon_images_sig1.tcl" in delphes_card
            assert '"mean_pileup": 50' in delphes_card
            run = one("container_shower_delphes", sample, chunk)
            assert f"'{DEFAULT['shower_command']}'" in run
            assert f"{DEFAULT['delphes_bin']}/DelphesHepMC2" in run
            assert run.split(" > ")[0].endswith(f"results/{sample}/delphes/chunk{chunk}.root")
    (pileup,) = cmds["container_pileup_library"]
    assert pileup.startswith(f"{DEFAULT['delphes_bin']}/hepmc2pileup ")
    (minbias,) = cmds["container_minbias_hepmc"]
    # the native pile-up library's seed and generator: the same library as the native backend
    assert minbias.startswith("python -m simulation.container minbias-hepmc")  # `python`: common.smk's prefix
    assert f"--seed {chunk_seed(seed, 'minbias', 0, 'pythia')} " in minbias


def test_unknown_container_key_is_rejected_with_its_name(tmp_path):
    proc = snakemake(tmp_path, "-n", overrides={"simulation": {"backend": "container", "container": {"imagee": "x"}}})
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "imagee" in output and "simulation.container" in output and "Traceback" not in output, output[-3000:]
    assert "simulation/container/config.schema.yaml" in output


def test_paper_native_profile_is_the_paper_profile_without_containers():
    """Same settings as the paper profile (config and Snakemake options), native backend, no runtime."""
    paper = yaml.safe_load((PROFILES / "paper" / "paper.yaml").read_text())
    native = yaml.safe_load((PROFILES / "paper-native" / "paper-native.yaml").read_text())
    assert native["simulation"].pop("backend") == "native" and paper["simulation"].pop("backend") == "container"
    assert native == paper
    assert native["simulation"]["pileup_events"] == 50_000  # the paper-scale library (issue 25: no crash)
    options = yaml.safe_load((PROFILES / "paper" / "config.yaml").read_text())
    native_options = yaml.safe_load((PROFILES / "paper-native" / "config.yaml").read_text())
    container_only = {"software-deployment-method", "apptainer-args", "apptainer-prefix", "conda-prefix"}
    assert native_options.pop("configfile") == "paper-native.yaml" and options.pop("configfile") == "paper.yaml"
    assert native_options == {k: v for k, v in options.items() if k not in container_only}
    scale = yaml.safe_load((PROFILES / "scale" / "scale.yaml").read_text())
    assert scale["simulation"]["pileup_events"] == 50_000


def test_paper_native_profile_plans_100k_images_per_class_natively(tmp_path):
    """`snakemake --profile workflow/profiles/paper-native` alone: native rules, 71 chunks of 2,500 kept
    events per class from one 50,000-event pile-up library, and no container runtime asked for."""
    proc = snakemake(tmp_path, "-n", "-p", "--profile", str(PROFILES / "paper-native"))
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    jobs = _job_counts(output)
    assert jobs["simulate_chunk"] == _scale("paper") == 142 and jobs["pileup_library"] == 1, jobs
    assert not [rule for rule in jobs if rule.startswith("container_")], jobs
    assert "apptainer" not in output.lower() and "singularity" not in output.lower()
    cmds = _shell_commands(output)
    (pileup,) = cmds["pileup_library"]
    assert '"pileup_events": 50000' in pileup
    chunks = cmds["simulate_chunk"]
    assert len(chunks) == 142 and all("--n-kept 2500 " in c and '"mean_pileup": 50' in c for c in chunks)
    assert jobs["build_images"] == 2

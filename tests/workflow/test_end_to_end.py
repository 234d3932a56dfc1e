"""The whole DAG on a tiny config: real Pythia, real Delphes, training, sampling, analysis.

- every final output exists and has the schema the next stage (or the user) relies on;
- changing a plotting option and asking for `figures` reruns plotting only;
- a run killed (SIGKILL, like a lost node) in the middle of simulation and again in the
  middle of training resumes and ends with the same outputs as the uninterrupted run.
"""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from imaging.h5schema import read_image_file

pytestmark = pytest.mark.slow

PROJECT_DIR = Path(__file__).resolve().parents[2]
SAMPLES = ("signal", "background")

#: Small enough for CI (2 cores), big enough that every stage has images to work with.
TINY_CONFIG = {
    "outdir": "results",
    "seed": 4242,
    "simulation": {"events_per_sample": 40, "events_per_chunk": 20, "pileup_events": 300},
    "training": {
        "epochs": 12, "batch_size": 8, "K": 8, "width": 16, "noise_dim": 8, "threads": 1,
        "sample_batch_size": 64, "n_generated": None,  # as many as real
        "models": {"decoupled_fc": {"arch": "fc"}, "decoupled_deconv": {"arch": "deconv", "width": 8},
                   "decoupled_fc_paper": {"arch": "fc", "objective": "paper"},
                   "lagan": {"arch": "fc", "family": "gan", "width": 32}},  # the GAN's smallest width
        # one model of each kind: the paper's, eq. 2, pT-conditional, the occupancy term, calibrated, GAN, VAE
        "run": ["decoupled_fc", "decoupled_deconv", "decoupled_fc_paper", "decoupled_deconv_conditional",
                "decoupled_fc_lognormal_marginal", "decoupled_deconv_calibrated", "lagan", "sparse_vae"],
    },
    "analysis": {"metrics": {"classifier": {"epochs": 3, "hidden_layers": [8]}}},
}


def snakemake(workdir: Path, *args: str, config: dict | None = None, timeout: float = 1500,
              popen: bool = False, env: dict | None = None, kill_after: float | None = None):
    """Run the project's Snakefile in `workdir` with `config` as --configfile.

    `kill_after`: run under `timeout -k kill_after timeout` (SIGTERM, then SIGKILL), for
    executors that may ignore SIGTERM (the SLURM plugin can wait forever).
    """
    cfg = workdir / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(config or TINY_CONFIG))
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(PROJECT_DIR / "Snakefile"),
           "--directory", str(workdir), "--configfile", str(cfg), "--cores", "2", *args]
    if kill_after is not None:
        cmd = ["timeout", "-k", str(kill_after), str(timeout), *cmd]
        timeout += kill_after + 30
    if popen:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True, env=env, cwd=workdir)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=workdir)


def _weights(record: dict) -> dict:
    """Every trained tensor of a model.pt: the decoupled generator's, or each network of a gan/vae."""
    if "generator_state" in record:
        return record["generator_state"]
    return {f"{net}.{key}": t for net, state in record["modules"].items() for key, t in state.items()}


def _ok(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, (proc.stdout[-4000:] + "\n" + proc.stderr[-6000:])


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """One uninterrupted run of the whole default DAG on the tiny config."""
    workdir = tmp_path_factory.mktemp("e2e")
    _ok(snakemake(workdir))
    return workdir / "results"


def test_every_final_output_has_its_schema(tiny_run: Path):
    import torch
    import uproot

    # simulation: Delphes trees with the branches imaging reads
    chunks = sorted(tiny_run.glob("*/delphes/chunk*.root"))
    assert {c.parts[-3] for c in chunks} == set(SAMPLES)
    for chunk in chunks:
        tree = uproot.open(chunk)["Delphes"]
        keys = set(tree.keys(recursive=True))
        for branch in ("Tower/Tower.ET", "Tower/Tower.Eta", "Tower/Tower.Phi", "Muon/Muon.PT", "Muon/Muon.Eta"):
            assert branch in keys, (chunk, branch)
        assert tree.num_entries > 0
    assert (tiny_run / "pileup" / "minbias.pileup").stat().st_size > 0

    # imaging: the images.h5 contract; signal weighted, background weight 1
    real = {s: read_image_file(tiny_run / s / "images.h5") for s in SAMPLES}
    for sample, data in real.items():
        assert len(data) > 0 and data.images.shape[1:] == (32, 32)
        assert data.attrs["sample"] == sample and data.attrs["kind"] == "real"
        assert np.all((data.muon_pt >= 10) & (data.muon_pt <= 15))
        assert data.images.min() >= 0
        assert "config_digest" in data.attrs["provenance"]
    assert np.allclose(real["background"].weight, 1.0)

    # training: checkpoints that load, with the config and the data digest recorded
    models = set(TINY_CONFIG["training"]["run"])  # `run` leaves the other configured models out
    with open(PROJECT_DIR / "config.yaml") as f:
        defaults = yaml.safe_load(f)["training"]["models"]
    # --configfile merges each entry into config.yaml's (as Snakemake does)
    entries = {m: {**defaults.get(m, {}), **TINY_CONFIG["training"]["models"].get(m, {})} for m in models}
    assert not (tiny_run / "models" / "signal" / "decoupled_deconv_gamma").exists()
    for sample in SAMPLES:
        for model in models:
            ckpt = torch.load(tiny_run / "models" / sample / model / "model.pt", map_location="cpu",
                              weights_only=False)
            assert isinstance(ckpt, dict) and ckpt, (sample, model)
            with open(tiny_run / "models" / sample / model / "train_log.csv") as f:
                rows = list(csv.DictReader(f))
            assert len(rows) == entries[model].get("epochs", TINY_CONFIG["training"]["epochs"]), (sample, model)
            assert all(np.isfinite(float(r["loss"])) for r in rows)

        # sampling + baseline: same schema as real images
        for model in models | {"independent_pixels"}:
            gen = read_image_file(tiny_run / "generated" / sample / f"{model}.h5")
            assert gen.attrs["kind"] == "generated" and gen.images.shape[1:] == (32, 32)
            assert len(gen) == len(real[sample])
            assert np.all(np.isfinite(gen.muon_pt)) and np.all(gen.muon_pt > 0)

    # analysis: Figures 2 and 3, the EMD and metrics tables with every sample x model
    for name in ("figure2_isolation", "figure3_average_images_linear", "figure3_average_images_log"):
        for ext in ("pdf", "png"):
            assert (tiny_run / "figures" / f"{name}.{ext}").stat().st_size > 1000
    with open(tiny_run / "tables" / "isolation_emd.csv") as f:
        rows = list(csv.DictReader(f))
    assert {(r["sample"], r["model"]) for r in rows} == {(s, m) for s in SAMPLES
                                                         for m in models | {"independent_pixels"}}
    for row in rows:
        assert float(row["isolation_emd"]) >= 0 and float(row["paper_emd"]) > 0
    assert (tiny_run / "tables" / "metrics.csv").stat().st_size > 0
    assert "independent_pixels" in (tiny_run / "tables" / "isolation_emd.md").read_text()
    # the simulation's CPU per image from the run's records, and every trained model's speed-up over it
    cost = json.loads((tiny_run / "tables" / "simulation_cost.json").read_text())["samples"]
    for sample in SAMPLES:
        assert cost[sample]["n_images"] == len(real[sample]) and cost[sample]["total_cpu_s_per_image"] > 0
        assert cost[sample]["cpu_s"]["delphes"] > 0 and cost[sample]["delphes_cpu_source"] == "chunk records"
    with open(tiny_run / "tables" / "results.csv") as f:
        results = list(csv.DictReader(f))
    for row in results:
        if row["model"] != "independent_pixels":
            assert float(row["speedup_cpu"]) > 0 and row["sampling_device"] == "cpu", row["model"]


def _planned_rules(dry_run_output: str) -> set[str]:
    """Rule names of the jobs a dry run would execute (from the 'Job stats' table)."""
    rules, in_table = set(), False
    for line in dry_run_output.splitlines():
        parts = line.split()
        if parts[:2] == ["job", "count"]:
            in_table = True
            continue
        if in_table:
            if not parts or parts[0] == "total":
                break
            if not set(parts[0]) <= {"-"}:
                rules.add(parts[0])
    return rules


def test_plotting_change_reruns_plotting_only(tiny_run: Path):
    workdir = tiny_run.parent
    before = {p: p.stat().st_mtime_ns for p in tiny_run.rglob("*") if p.suffix in {".root", ".pt", ".h5"}}
    config = json.loads(json.dumps(TINY_CONFIG))
    config["analysis"]["figure2"] = {"bins": 17}
    dry = snakemake(workdir, "-n", "figures", config=config)
    _ok(dry)
    planned = _planned_rules(dry.stdout + dry.stderr)
    assert planned, dry.stdout[-3000:]
    assert planned <= {"analysis_figure2", "figures"}, planned
    _ok(snakemake(workdir, "figures", config=config))
    after = {p: p.stat().st_mtime_ns for p in before}
    assert after == before, "simulation, images, models or generated samples were rewritten"


def _wait_for(proc: subprocess.Popen, pattern: str, root: Path, timeout: float) -> bool:
    """Poll until a file matching `pattern` exists under `root` (True) or proc ends (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(root.glob(pattern)):
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.02)
    raise TimeoutError(f"no {pattern} under {root} after {timeout} s")


def _kill(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)


def test_killed_run_resumes_to_identical_outputs(tiny_run: Path, tmp_path: Path):
    import torch

    results = tmp_path / "results"
    # 1. kill while the first Delphes chunk is being written
    proc = snakemake(tmp_path, popen=True)
    assert _wait_for(proc, "*/delphes/.chunk*", results, timeout=600), "simulation finished before the kill"
    _kill(proc)
    import uproot

    for chunk in results.glob("*/delphes/chunk*.root"):  # whatever has its final name is complete
        assert uproot.open(chunk)["Delphes"].num_entries == TINY_CONFIG["simulation"]["events_per_chunk"], chunk
    _ok(snakemake(tmp_path, "--unlock"))

    # 2. resume; kill again once a model has written an epoch checkpoint but not model.pt
    proc = snakemake(tmp_path, "--rerun-incomplete", popen=True)
    killed_in_training = _wait_for(proc, "models/*/*/checkpoints/*", results, timeout=900)
    _kill(proc)
    assert killed_in_training, "training finished before the kill"
    _ok(snakemake(tmp_path, "--unlock"))

    # 3. resume to the end
    _ok(snakemake(tmp_path, "--rerun-incomplete"))

    for sample in SAMPLES:
        a, b = read_image_file(tiny_run / sample / "images.h5"), read_image_file(results / sample / "images.h5")
        np.testing.assert_array_equal(a.images, b.images)
        np.testing.assert_array_equal(a.weight, b.weight)
        for model_dir in sorted((tiny_run / "models" / sample).iterdir()):
            ref = torch.load(model_dir / "model.pt", map_location="cpu", weights_only=False)
            new = torch.load(results / "models" / sample / model_dir.name / "model.pt", map_location="cpu",
                             weights_only=False)
            ref_state, new_state = _weights(ref), _weights(new)
            assert ref_state.keys() == new_state.keys()
            for key in ref_state:
                assert torch.equal(ref_state[key], new_state[key]), (sample, model_dir.name, key)
        for gen in sorted((tiny_run / "generated" / sample).glob("*.h5")):
            np.testing.assert_array_equal(read_image_file(gen).images,
                                          read_image_file(results / "generated" / sample / gen.name).images)

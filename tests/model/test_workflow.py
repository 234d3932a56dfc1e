"""training.smk: the rules, targets and GENERATED_MODELS the Snakefile and analysis rely on (dry run)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from model.settings import model_settings

ROOT = Path(__file__).resolve().parents[2]
SNAKEMAKE = shutil.which("snakemake", path=str(Path(sys.executable).parent)) or shutil.which("snakemake")


@pytest.mark.slow
@pytest.mark.skipif(SNAKEMAKE is None, reason="snakemake not installed")
def test_dry_run_plans_training_sampling_and_baseline(tmp_path):
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["outdir"] = str(tmp_path / "results")
    config["samples"] = ["background"]
    config["training"]["models"] = {"fc_a": {"arch": "fc", "epochs": 2},
                                    "deconv_b": {"arch": "deconv", "objective": "paper"}}
    config["training"]["run"] = None  # every configured model (config.yaml's `run` picks four)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    images = tmp_path / "results" / "background" / "images.h5"
    images.parent.mkdir(parents=True)
    images.write_bytes(b"")  # existence is all a dry run needs
    proc = subprocess.run(
        [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path), "--configfile",
         str(tmp_path / "config.yaml"), "--allowed-rules", "train_model", "sample_model", "baseline", "train",
         "-n", "-p", "--cores", "1", "train"],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = proc.stdout
    # --configfile is merged into config.yaml by Snakemake, so the default models stay configured
    n_models = len(set(yaml.safe_load((ROOT / "config.yaml").read_text())["training"]["models"]) | {"fc_a", "deconv_b"})
    counts = dict(re.findall(r"^(train_model|sample_model|baseline)\s+(\d+)$", text, flags=re.M))
    assert counts == {"train_model": str(n_models), "sample_model": str(n_models), "baseline": "1"}
    for path in ("models/background/fc_a/model.pt", "models/background/deconv_b/train_log.csv",
                 "generated/background/fc_a.h5", "generated/background/deconv_b.h5",
                 "generated/background/independent_pixels.h5"):
        assert str(tmp_path / "results" / path) in text
    # per-model overrides reach the command line; checkpoints live in the model's folder
    # what each train job's CLI makes of its --config-json (model.settings, as `python -m model train` does)
    settings = {m: model_settings(json.loads(s), m)
                for m, s in re.findall(r"-m model train .*?--model-name (\w+) .*?--config-json '(\{.*?\})'", text)}
    assert settings["fc_a"]["arch"] == "fc" and settings["fc_a"]["epochs"] == 2
    assert settings["fc_a"]["objective"] == "bound"
    assert settings["deconv_b"]["arch"] == "deconv" and settings["deconv_b"]["epochs"] == 30
    assert settings["deconv_b"]["objective"] == "paper"
    assert f"--checkpoint-dir {tmp_path / 'results' / 'models' / 'background' / 'fc_a' / 'checkpoints'}" in text


@pytest.mark.slow
@pytest.mark.skipif(SNAKEMAKE is None, reason="snakemake not installed")
def test_reserved_model_name_is_a_config_error(tmp_path):
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["training"]["models"] = {"independent_pixels": {"arch": "fc"}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    proc = subprocess.run(
        [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path), "--configfile",
         str(tmp_path / "config.yaml"), "-n", "--cores", "1", "train"],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert proc.returncode != 0
    assert "training" in proc.stdout + proc.stderr and "independent_pixels" in proc.stdout + proc.stderr


@pytest.mark.slow
@pytest.mark.skipif(SNAKEMAKE is None, reason="snakemake not installed")
def test_run_selects_models_and_rejects_unknown_names(tmp_path):
    """training.run leaves configured models out (a --configfile cannot delete config.yaml's entries)."""
    images = tmp_path / "results" / "background" / "images.h5"
    images.parent.mkdir(parents=True)
    images.write_bytes(b"")

    def dry_run(run):
        cfg = tmp_path / "run.yaml"
        cfg.write_text(yaml.safe_dump({"outdir": str(tmp_path / "results"), "samples": ["background"],
                                       "training": {"run": run}}))
        return subprocess.run(
            [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path), "--configfile", str(cfg),
             "--allowed-rules", "train_model", "sample_model", "baseline", "train", "-n", "-p", "--cores", "1",
             "train"],
            capture_output=True, text=True, cwd=tmp_path,
        )

    proc = dry_run(["decoupled_fc"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    counts = dict(re.findall(r"^(train_model|sample_model|baseline)\s+(\d+)$", proc.stdout, flags=re.M))
    assert counts == {"train_model": "1", "sample_model": "1", "baseline": "1"}
    assert "--model-name decoupled_fc " in proc.stdout and "decoupled_deconv" not in proc.stdout
    proc = dry_run(["decoupled_fc", "no_such_model"])
    assert proc.returncode != 0
    assert "training.run" in proc.stdout + proc.stderr and "no_such_model" in proc.stdout + proc.stderr

"""The `imaging:` config section, its schema and the Snakemake rule that calls the CLI."""
from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
import yaml
from imaging_cases import PROJECT_DIR
from snakemake.utils import validate

from imaging import ImagingConfig
from imaging.h5schema import read_image_file
from imaging.synthetic import random_delphes_events, write_delphes_file

SCHEMA = PROJECT_DIR / "workflow" / "schemas" / "imaging.schema.yaml"


def test_schema_defaults_are_the_code_defaults():
    filled: dict = {}
    validate(filled, str(SCHEMA), set_default=True)
    assert filled == ImagingConfig().as_dict()


def test_schema_documents_every_key_and_rejects_unknown_ones():
    schema = yaml.safe_load(SCHEMA.read_text())
    assert schema["additionalProperties"] is False
    for key, prop in schema["properties"].items():
        assert prop.get("description") and "default" in prop, key
    with pytest.raises(Exception, match="npixels"):
        validate({"npixels": 32}, str(SCHEMA))


def test_config_yaml_section_is_valid_and_complete():
    section = yaml.safe_load((PROJECT_DIR / "config.yaml").read_text())["imaging"]
    validate(section, str(SCHEMA), set_default=True)
    ImagingConfig.from_mapping(section)


def _run_snakemake(workdir, *extra):
    targets = [str(workdir / "results" / sample / "images.h5") for sample in ("signal", "background")]
    cmd = [sys.executable, "-m", "snakemake", *targets, *extra, "--cores", "1",
           "--snakefile", str(PROJECT_DIR / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(PROJECT_DIR / "config.yaml"), "--config", f"outdir={workdir / 'results'}",
           "--allowed-rules", "build_images"]  # last: it takes every word after it
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_snakemake_images_target_builds_both_samples(tmp_path):
    """The rule runs the CLI on the chunk files; the signal is reweighted to the background.

    Only build_images may run (--allowed-rules): the Delphes chunks are small synthetic files.
    """
    res = tmp_path / "results"
    # The chunk list comes from the simulation stage (delphes_chunks): write a small Delphes-schema
    # file at every path the dry run reports missing, until the DAG is complete.
    for attempt in range(10):
        dry = _run_snakemake(tmp_path, "-n")
        missing = sorted(set(re.findall(r"\S+/delphes/chunk\d+\.root", dry.stdout + dry.stderr)))
        if dry.returncode == 0 or not missing:
            break
        for i, path in enumerate(missing):
            towers, muons, w = random_delphes_events(150, towers_per_event=200, seed=10 * attempt + i)
            write_delphes_file(path, towers, muons, w)
    assert dry.returncode == 0, dry.stdout[-3000:] + dry.stderr[-3000:]
    proc = _run_snakemake(tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    sig, bkg = read_image_file(res / "signal" / "images.h5"), read_image_file(res / "background" / "images.h5")
    assert (bkg.weight == 1).all() and sig.attrs["reweighted_to"].endswith("background/images.h5")
    edges = ImagingConfig().pt_edges
    hs = np.histogram(sig.muon_pt, edges, weights=sig.weight)[0]
    hb = np.histogram(bkg.muon_pt, edges, weights=bkg.weight)[0]
    both = (hs > 0) & (hb > 0)
    np.testing.assert_allclose((hs / hs.sum())[both], (hb / hb.sum())[both], rtol=1e-6)
    log = (res / "logs" / "imaging" / "signal.log").read_text()
    assert "weighted mean muon pT" in log and (res / "benchmarks" / "imaging" / "signal.tsv").exists()

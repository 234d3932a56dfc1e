"""Simulation cost per image from the run's records, and the results table's speed-up columns."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import uproot

from analysis.cli import main
from analysis.errors import AnalysisError
from analysis.results_table import results_rows
from analysis.simulation_cost import SampleRecords, simulation_cost
from model.synthetic import write_synthetic_file
from simulation.chunk import ChunkSpec, chunk_record, write_stats
from simulation.generation import GenerationStats

#: (pythia, filter, hepmc, delphes) CPU seconds of each chunk of each sample
CHUNK_CPU = {"signal": [(10.0, 0.5, 1.5, 12.0), (11.0, 0.5, 1.5, 13.0)], "background": [(40.0, 1.0, 3.0, 20.0)]}
N_IMAGES = {"signal": 200, "background": 100}


def _run(tmp_path: Path, *, delphes_in_json: bool = True) -> tuple[dict[str, SampleRecords], Path]:
    """A run's records as the simulation writes them: chunk JSONs, Delphes files with provenance, images.h5,
    the imaging benchmark TSV, the pile-up library record."""
    samples = {}
    for sample, chunks in CHUNK_CPU.items():
        json_paths, root_paths = [], []
        for i, (pythia, filt, hepmc, delphes) in enumerate(chunks):
            stats = GenerationStats(label=f"{sample} {i}", process=sample, seed=i, generated=400, kept=100,
                                    seconds={"pythia": pythia, "filter": filt, "hepmc": hepmc})
            extra = {"delphes_cpu_s": delphes} if delphes_in_json else {}
            record = chunk_record(ChunkSpec(sample, i, 100, 1), stats, transport="pipe", **extra)
            json_paths.append(tmp_path / sample / "generator" / f"chunk{i}.json")
            json_paths[-1].parent.mkdir(parents=True, exist_ok=True)
            write_stats(json_paths[-1], record)
            root_paths.append(tmp_path / sample / "delphes" / f"chunk{i}.root")
            root_paths[-1].parent.mkdir(parents=True, exist_ok=True)
            with uproot.recreate(root_paths[-1]) as f:  # what simulation/delphes.py stores in every chunk file
                f["provenance"] = json.dumps({"delphes_cpu_s": delphes})
        images = write_synthetic_file(tmp_path / sample / "images.h5", N_IMAGES[sample], seed=1, sample=sample)
        bench = tmp_path / "benchmarks" / "imaging" / f"{sample}.tsv"
        bench.parent.mkdir(parents=True, exist_ok=True)
        bench.write_text("s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
                         "3.1\t0:00:03\t300\t900\t280\t290\t1\t2\t50\t2.0\n")
        samples[sample] = SampleRecords(json_paths, images, root_paths, bench)
    pileup = tmp_path / "pileup" / "minbias.json"
    pileup.parent.mkdir()
    write_stats(pileup, {"generation": {"seconds": {"pythia": 20.0, "filter": 0.0, "hepmc": 10.0}}})
    return samples, pileup


def test_cost_per_image_by_step_from_the_records(tmp_path: Path) -> None:
    samples, pileup = _run(tmp_path)
    cost = simulation_cost(samples, pileup)
    sig, bkg = cost["samples"]["signal"], cost["samples"]["background"]
    assert sig["n_images"] == 200 and sig["events_kept"] == 200 and sig["events_generated"] == 800
    assert sig["cpu_s"]["generation"] == pytest.approx(25.0) and sig["cpu_s"]["delphes"] == pytest.approx(25.0)
    assert sig["cpu_s"]["imaging"] == 2.0 and sig["delphes_cpu_source"] == "chunk records"
    # the 30 s pile-up library over all 300 images: 20 s to the signal's 200, 10 s to the background's 100
    assert sig["cpu_s"]["pileup_share"] == pytest.approx(20.0) and bkg["cpu_s"]["pileup_share"] == pytest.approx(10.0)
    assert sig["total_cpu_s_per_image"] == pytest.approx((25 + 25 + 2 + 20) / 200)
    assert bkg["total_cpu_s_per_image"] == pytest.approx((44 + 20 + 2 + 10) / 100)
    assert bkg["cpu_ms_per_image"]["delphes"] == pytest.approx(200.0)


def test_delphes_cpu_from_the_root_files_when_the_records_lack_it(tmp_path: Path) -> None:
    samples, _ = _run(tmp_path, delphes_in_json=False)
    cost = simulation_cost(samples)  # no pile-up record: its share stays blank, the total counts what is known
    sig = cost["samples"]["signal"]
    assert sig["delphes_cpu_source"] == "Delphes files" and sig["cpu_s"]["delphes"] == pytest.approx(25.0)
    assert sig["cpu_s"]["pileup_share"] is None and sig["total_cpu_s_per_image"] == pytest.approx(52 / 200)
    without_root = {s: SampleRecords(r.chunks, r.images) for s, r in samples.items()}
    assert simulation_cost(without_root)["samples"]["signal"]["total_cpu_s_per_image"] is None  # never a guess


def test_missing_or_broken_records_are_clear_errors(tmp_path: Path) -> None:
    samples, _ = _run(tmp_path)
    samples["signal"].chunks[0].write_text("{not json")
    with pytest.raises(AnalysisError, match=r"chunk0\.json: not valid JSON"):
        simulation_cost(samples)
    samples["signal"].chunks[0].unlink()
    with pytest.raises(AnalysisError, match=r"chunk0\.json: no such simulation record"):
        simulation_cost(samples)


def test_cli_writes_the_cost_and_the_results_table_gets_the_speedup(tmp_path: Path) -> None:
    samples, pileup = _run(tmp_path)
    args = ["simulation-cost", "--pileup", str(pileup), "--out-json", str(tmp_path / "cost.json"),
            "--out-md", str(tmp_path / "cost.md"), "--chunks"]
    args += [f"{s}={p}" for s, r in samples.items() for p in r.chunks]
    args += ["--delphes", *[f"{s}={p}" for s, r in samples.items() for p in r.delphes]]
    args += ["--images", *[f"{s}={r.images}" for s, r in samples.items()]]
    args += ["--imaging-benchmark", *[f"{s}={r.imaging_benchmark}" for s, r in samples.items()]]
    assert main(args) == 0
    cost = json.loads((tmp_path / "cost.json").read_text())
    assert cost["samples"]["signal"]["total_cpu_s_per_image"] == pytest.approx(72 / 200)
    assert "| signal | 200 | 200 |" in (tmp_path / "cost.md").read_text()

    base = {"isolation_emd": 0.1, "isolation_emd_noise": 0.01, "zero_fraction_real": 0.99,
            "zero_fraction_generated": 0.99, "classifier_auc": 0.7, "low_isolation_threshold": 0.02,
            "low_isolation_fraction_real": 0.4, "low_isolation_fraction_generated": 0.4}
    records = {
        "cpu": {**base, "sample": "signal", "model": "fc", "sampling_n_images": 20000, "sampling_load_cpu_s": 0.2,
                "sampling_loop_cpu_s": 0.8, "sampling_load_s": 5.0, "sampling_loop_s": 5.0, "sampling_device": "cpu",
                "sampling_threads": 1},
        "gpu": {**base, "sample": "background", "model": "fc", "sampling_n_images": 20000, "sampling_load_s": 0.1,
                "sampling_loop_s": 0.1, "sampling_load_cpu_s": 9.0, "sampling_loop_cpu_s": 9.0,
                "sampling_device": "cuda", "sampling_threads": 1},
        "old": {**base, "sample": "background", "model": "independent_pixels"},  # written before: blanks
    }
    paths = []
    for name, rec in records.items():
        paths.append(tmp_path / f"{name}.metrics.json")
        paths[-1].write_text(json.dumps(rec))
    assert main(["results-table", "--metrics", *map(str, paths), "--simulation-cost", str(tmp_path / "cost.json"),
                 "--out-csv", str(tmp_path / "r.csv"), "--out-md", str(tmp_path / "r.md")]) == 0
    rows = {(r["sample"], r["model"]): r for r in csv.DictReader(open(tmp_path / "r.csv"))}
    cpu, gpu, old = rows["signal", "fc"], rows["background", "fc"], rows["background", "independent_pixels"]
    # CPU: CPU seconds (1.0 s over 20,000 images = 50 us); GPU: wall seconds (0.2 s = 10 us)
    assert float(cpu["sampling_us_per_image"]) == pytest.approx(50.0) and cpu["speedup_gpu"] == ""
    assert float(cpu["speedup_cpu"]) == pytest.approx(0.36 / 50e-6)
    assert float(gpu["speedup_gpu"]) == pytest.approx(0.76 / 10e-6) and gpu["speedup_cpu"] == ""
    assert old["speedup_cpu"] == old["speedup_gpu"] == old["sampling_us_per_image"] == ""
    md = (tmp_path / "r.md").read_text()
    assert "speed-up (CPU)" in md and "7,200" in md and "76,000" in md and "cpu, 1 thread" in md


def test_results_rows_without_a_cost_leave_the_speedup_blank() -> None:
    rec = {"sample": "signal", "model": "fc", "isolation_emd": 0.1, "isolation_emd_noise": 0.01,
           "zero_fraction_real": 0.99, "zero_fraction_generated": 0.99, "classifier_auc": 0.7,
           "low_isolation_threshold": 0.02, "low_isolation_fraction_real": 0.4, "low_isolation_fraction_generated": 0.4,
           "sampling_n_images": 100, "sampling_load_cpu_s": 0.0, "sampling_loop_cpu_s": 0.01,
           "sampling_device": "cpu", "sampling_threads": 1}
    row = results_rows([rec])[0]
    assert row["sampling_us_per_image"] == pytest.approx(100.0)
    assert row["speedup_cpu"] is None and row["simulation_cpu_ms_per_image"] is None
    assert np.isfinite(row["isolation_emd"])

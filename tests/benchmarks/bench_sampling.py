"""Benchmark of sampling: what one generated image costs, split into start-up, model loading and the loop.

    .venv/bin/python tests/benchmarks/bench_sampling.py results/models \\
        [--device cpu cuda] [--threads 1 0] [--batch-sizes 1024 4096 16384] [--n-cpu 20000] [--n-cuda 1000000] \\
        [--precision fp32 bf16] [--simulation-cost results/tables/simulation_cost.json] [--json out.json] [--md out.md]

Models: model.pt files, or folders searched for */*/model.pt (results/models/{sample}/{model}/model.pt).
For every model, device and thread count (0 = all cores) it times, each separately:
- start-up: a fresh `python -c "import model.cli"` and `python -m model sample --help` (wall, best of 3);
- loading: `model.families.load_model` onto the device (best of 3; on CUDA the first call also pays the
  CUDA context, reported as `first_load_s`);
- the sampling loop: the family's `generate` (model/batching.py, the same loop `python -m model sample`
  runs, images copied to host memory included) of n images at each batch size, after a warm-up batch;
  wall and process CPU time; on CUDA also with the images left on the device (no copy to the host).
On CUDA with `--precision bf16` the generator networks run under bf16 autocast (the random draws stay
float32, so fp32 and bf16 images of one seed are comparable pixel by pixel) and the table shows the
images both ways: identical pixels, zero-pixel fraction, mean total ET and, with the real images
(`--real-dir`, {dir}/{sample}/images.h5), the isolation EMD to real.
With `--simulation-cost` (analysis/simulation_cost.py's JSON) every row gets its speed-up: simulation
CPU per image of the model's sample / sampling-loop time per image at the best batch size.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from analysis.distances import weighted_emd  # noqa: E402
from analysis.isolation import isolation  # noqa: E402
from imaging.h5schema import read_image_file  # noqa: E402
from model.batching import images_stay_on_device  # noqa: E402
from model.families import family_module, load_model  # noqa: E402
from model.sampling import cpu_name  # noqa: E402


def model_files(paths: list[str]) -> list[Path]:
    """model.pt files: the given files, and */*/model.pt under the given folders (sorted)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(p.glob("*/*/model.pt"))
        elif p.is_file():
            out.append(p)
        else:
            raise SystemExit(f"error: {p} is neither a model.pt file nor a folder of models")
    if not out:
        raise SystemExit(f"error: no model.pt found in {paths}")
    return out


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def startup_s(repeat: int = 3) -> dict[str, float]:
    """Wall and CPU seconds (best of `repeat`) of a fresh interpreter importing the model CLI, and of
    `python -m model sample --help`."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = {}
    for name, cmd in (("import_model_cli", [sys.executable, "-c", "import model.cli"]),
                      ("sample_help", [sys.executable, "-m", "model", "sample", "--help"])):
        wall = cpu = float("inf")
        for _ in range(repeat):
            t0, c0 = time.perf_counter(), _children_cpu_s()
            subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
            wall, cpu = min(wall, time.perf_counter() - t0), min(cpu, _children_cpu_s() - c0)
        out[f"{name}_s"], out[f"{name}_cpu_s"] = wall, cpu
    return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_load(path: Path, device: torch.device, repeat: int = 3) -> dict[str, float]:
    """Seconds to rebuild the model on the device: the first call, and the best of `repeat` further calls."""
    times = []
    for _ in range(repeat + 1):
        t0 = time.perf_counter()
        load_model(path, device=device)
        _sync(device)
        times.append(time.perf_counter() - t0)
    return {"first_load_s": times[0], "load_s": min(times[1:])}


def _generate(model: torch.nn.Module, record: dict[str, Any], n: int, batch_size: int, device: torch.device,
              precision: str, seed: int = 1, output: str = "host") -> np.ndarray:
    family = family_module(record["family"])
    pt = (np.full(n, float(record["training_data"]["mean_muon_pt_gev"]), np.float32)
          if family.conditional(model) else None)
    with contextlib.ExitStack() as stack:
        if precision == "bf16":
            stack.enter_context(torch.autocast("cuda", dtype=torch.bfloat16))
        if output == "device":
            stack.enter_context(images_stay_on_device())
        return family.generate(model, n, seed=seed, batch_size=batch_size, device=device, progress=False, pt_gev=pt)


def time_loop(model: torch.nn.Module, record: dict[str, Any], n: int, batch_size: int, device: torch.device,
              precision: str, output: str = "host") -> dict[str, float]:
    """Wall and CPU seconds of generating n images (after one warm-up batch), per image in microseconds;
    output "device": the images stay on the GPU (no device-to-host copy)."""
    _generate(model, record, min(n, batch_size), batch_size, device, precision, output=output)
    _sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    _generate(model, record, n, batch_size, device, precision, output=output)
    _sync(device)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"loop_s": wall, "loop_cpu_s": cpu, "us_per_image": 1e6 * wall / n, "cpu_us_per_image": 1e6 * cpu / n,
            "images_per_s": n / wall}


def image_summary(images: np.ndarray, muon_pt: float, real: Path | None) -> dict[str, float]:
    """Zero-pixel fraction, mean total ET (GeV) and, given the real file, the isolation EMD to real."""
    flat = images.reshape(len(images), -1)
    out = {"zero_fraction": float((flat == 0).mean()), "total_et_mean_gev": float(flat.sum(1).mean())}
    if real is not None and real.is_file():
        r = read_image_file(real)
        radius = float(r.attrs["radius"])
        iso_real = isolation(r.images, r.muon_pt, radius)
        iso_gen = isolation(images, np.full(len(images), muon_pt), radius)
        out["isolation_emd_to_real"] = weighted_emd(iso_real, iso_gen, r.weight, None)
    return out


def compare_precisions(model: torch.nn.Module, record: dict[str, Any], n: int, batch_size: int,
                       device: torch.device, real: Path | None) -> dict[str, Any]:
    """fp32 and bf16 images of one seed side by side: identical pixels, largest difference, summaries."""
    a = _generate(model, record, n, batch_size, device, "fp32")
    b = _generate(model, record, n, batch_size, device, "bf16")
    pt = float(record["training_data"]["mean_muon_pt_gev"])
    return {"n": n, "identical_pixel_fraction": float((a == b).mean()),
            "same_occupancy_fraction": float(((a != 0) == (b != 0)).mean()),
            "max_abs_diff_gev": float(np.abs(a - b).max()),
            "fp32": image_summary(a, pt, real), "bf16": image_summary(b, pt, real)}


def simulation_cost(path: str | None) -> dict[str, float]:
    """Simulation CPU seconds per image by sample, from analysis/simulation_cost.py's JSON."""
    if not path:
        return {}
    data = json.loads(Path(path).read_text())
    return {s: float(v["total_cpu_s_per_image"]) for s, v in data["samples"].items()}


def markdown(rows: list[dict[str, Any]], comparisons: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    """The results as Markdown tables: per model and setting the best batch size, then every batch size."""
    st = meta["startup"]
    lines = [f"Machine: {meta['cpu']} ({meta['cpu_count']} cores){', ' + meta['gpu'] if meta['gpu'] else ''}; "
             f"torch {meta['torch']}; start-up (wall / CPU, best of 3): import model.cli "
             f"{st['import_model_cli_s']:.2f} / {st['import_model_cli_cpu_s']:.2f} s, `python -m model sample --help` "
             f"{st['sample_help_s']:.2f} / {st['sample_help_cpu_s']:.2f} s; load avg. {meta['load_average'][0]:.1f}.",
             "Speed-up: simulation CPU per image / sampling-loop time per image, the loop's CPU time on 1 CPU thread, "
             "its wall time otherwise (at the best batch size). Images to: host = copied to host memory (what "
             "`python -m model sample` delivers), device = left on the GPU (model.batching.images_stay_on_device).",
             ""]
    head = ("| sample | model | device | threads | precision | images to | best batch | load [s] "
            "| loop us/image (wall) "
            "| loop us/image (CPU) | images/s | sim. CPU / image [ms] | speed-up (loop) |")
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    best: dict[tuple, dict[str, Any]] = {}
    for r in rows:
        key = (r["sample"], r["model"], r["device"], r["threads"], r["precision"], r["output"])
        if key not in best or r["us_per_image"] < best[key]["us_per_image"]:
            best[key] = r
    for r in best.values():
        sim = r.get("simulation_cpu_s_per_image")
        speedup = "" if sim is None else f"{r['speedup']:,.0f}x"
        lines.append(
            f"| {r['sample']} | {r['model']} | {r['device']} | {r['threads'] or ''} | {r['precision']} | "
            f"{r['output']} | "
            f"{r['batch_size']} | {r['load_s']:.3f} | {r['us_per_image']:.2f} | {r['cpu_us_per_image']:.2f} | "
            f"{r['images_per_s']:,.0f} | {'' if sim is None else f'{1e3 * sim:.1f}'} | "
            f"{speedup} |")
    lines += ["", "Every batch size (loop, wall us per image):", "",
              "| sample | model | device | threads | precision | images to | " + " | ".join(
                  str(b) for b in meta["batch_sizes"]) + " |",
              "|" + "---|" * (6 + len(meta["batch_sizes"]))]
    for key in best:
        cells = {r["batch_size"]: f"{r['us_per_image']:.2f}" for r in rows
                 if (r["sample"], r["model"], r["device"], r["threads"], r["precision"], r["output"]) == key}
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {key[3] or ''} | {key[4]} | {key[5]} | "
                     + " | ".join(cells.get(b, "") for b in meta["batch_sizes"]) + " |")
    if comparisons:
        lines += ["", "fp32 against bf16 autocast on CUDA (same seed; random draws in float32):", "",
                  "| sample | model | identical pixels | same occupancy | max abs diff [GeV] | zero frac. fp32 / bf16 "
                  "| mean total ET fp32 / bf16 [GeV] | iso. EMD to real fp32 / bf16 |", "|" + "---|" * 8]
        for c in comparisons:
            f, b = c["fp32"], c["bf16"]
            emd = (f"{f['isolation_emd_to_real']:.4f} / {b['isolation_emd_to_real']:.4f}"
                   if "isolation_emd_to_real" in f else "")
            lines.append(f"| {c['sample']} | {c['model']} | {100 * c['identical_pixel_fraction']:.3f}% | "
                         f"{100 * c['same_occupancy_fraction']:.3f}% | {c['max_abs_diff_gev']:.3g} | "
                         f"{100 * f['zero_fraction']:.3f}% / {100 * b['zero_fraction']:.3f}% | "
                         f"{f['total_et_mean_gev']:.3f} / {b['total_et_mean_gev']:.3f} | {emd} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", help="model.pt files or folders holding {sample}/{model}/model.pt")
    p.add_argument("--device", nargs="+", default=["cpu"], help="cpu and/or cuda (cuda skipped without a GPU)")
    p.add_argument("--threads", nargs="+", type=int, default=[1, 0], help="CPU threads to time (0 = all cores)")
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[1024, 4096, 16384])
    p.add_argument("--n-cpu", type=int, default=20000, help="images per timed loop on the CPU")
    p.add_argument("--n-cuda", type=int, default=1_000_000, help="images per timed loop on CUDA")
    p.add_argument("--precision", nargs="+", default=["fp32"], help="fp32 and/or bf16 (bf16: CUDA only)")
    p.add_argument("--compare-n", type=int, default=20000, help="images per precision in the fp32/bf16 comparison")
    p.add_argument("--real-dir", help="folder with {sample}/images.h5: isolation EMD to real in the comparison")
    p.add_argument("--simulation-cost", help="simulation_cost.json (analysis): adds the speed-up column")
    p.add_argument("--no-startup", action="store_true", help="skip the start-up timing")
    p.add_argument("--json", help="write all timings as JSON here")
    p.add_argument("--md", help="write the Markdown tables here")
    args = p.parse_args()
    files = model_files(args.models)
    sim = simulation_cost(args.simulation_cost)
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else ""
    meta = {"cpu": cpu_name(), "cpu_count": os.cpu_count(), "gpu": gpu, "torch": torch.__version__,
            "python": platform.python_version(), "batch_sizes": args.batch_sizes,
            "startup": ({k: float("nan") for k in ("import_model_cli_s", "import_model_cli_cpu_s", "sample_help_s",
                                                   "sample_help_cpu_s")} if args.no_startup else startup_s()),
            "load_average": os.getloadavg()}
    print(f"# {meta}", flush=True)
    rows: list[dict[str, Any]] = []
    comparisons: list[dict[str, Any]] = []
    for dev_name in args.device:
        if dev_name.startswith("cuda") and not torch.cuda.is_available():
            print(f"# {dev_name}: torch sees no CUDA GPU; skipped", flush=True)
            continue
        device = torch.device(dev_name)
        settings = [(t, prec) for t in (args.threads if device.type == "cpu" else [0])
                    for prec in args.precision if prec == "fp32" or device.type == "cuda"]
        for path in files:
            for threads, precision in settings:
                torch.set_num_threads(threads or os.cpu_count() or 1)
                load = time_load(path, device)
                model, record = load_model(path, device=device)
                sample, name = str(record["training_data"]["sample"]), path.parent.name
                n = args.n_cpu if device.type == "cpu" else args.n_cuda
                for bs, output in ((b, o) for b in args.batch_sizes
                                   for o in (("host", "device") if device.type == "cuda" else ("host",))):
                    row = {"sample": sample, "model": name, "family": record["family"], "device": device.type,
                           "threads": torch.get_num_threads() if device.type == "cpu" else None,
                           "precision": precision, "output": output, "batch_size": bs, "n": n, **load,
                           **time_loop(model, record, n, bs, device, precision, output)}
                    if sample in sim:  # 1 CPU thread: against the loop's CPU time, else its wall time
                        per_image = row["loop_cpu_s" if row["threads"] == 1 else "loop_s"] / n
                        row["simulation_cpu_s_per_image"] = sim[sample]
                        row["speedup"] = sim[sample] / per_image
                    rows.append(row)
                    print(json.dumps(row), flush=True)
            if device.type == "cuda" and "bf16" in args.precision:
                model, record = load_model(path, device=device)
                sample = str(record["training_data"]["sample"])
                real = Path(args.real_dir) / sample / "images.h5" if args.real_dir else None
                comp = {"sample": sample, "model": path.parent.name,
                        **compare_precisions(model, record, args.compare_n, max(args.batch_sizes), device, real)}
                comparisons.append(comp)
                print(json.dumps(comp), flush=True)
            write_outputs(args, rows, comparisons, meta)  # after every model: a killed run keeps what it measured
    print(write_outputs(args, rows, comparisons, meta))


def write_outputs(args: argparse.Namespace, rows: list[dict[str, Any]], comparisons: list[dict[str, Any]],
                  meta: dict[str, Any]) -> str:
    """Write the JSON and Markdown outputs asked for (so far); returns the Markdown."""
    text = markdown(rows, comparisons, meta) if rows else ""
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta, "rows": rows, "precision_comparison": comparisons},
                                              indent=1, default=str))
    if args.md:
        Path(args.md).write_text(text)
    return text


if __name__ == "__main__":
    main()

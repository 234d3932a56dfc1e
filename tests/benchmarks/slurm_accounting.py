"""Per-rule CPU time and peak memory of a SLURM run (from `sacct`), and the paper scale projected from it.

The SLURM executor plugin writes each job's rule and wildcards into the job comment
(`rule_<rule>_wildcards_<sample>_<chunk>`), which `envs/slurm_local.sh` stores in the accounting
database; with `jobacct_gather/linux` sacct reports each job's CPU time (`TotalCPU`, the job and all
its child processes: Pythia, the HepMC pipe and Delphes) and peak resident memory per step (`MaxRSS`).

    sacct -a -S 2026-12-04 -P -o JobID,State,Elapsed,TotalCPU,MaxRSS,Comment > sacct.txt
    python tests/benchmarks/slurm_accounting.py sacct.txt --outdir results-scale \
        --profile workflow/profiles/paper-native/paper-native.yaml

prints a markdown table per rule (jobs, states, CPU per job and per kept event, peak memory) and the
projection of the profile's simulation (kept events per sample, chunk size, pile-up library) from the
measured CPU per kept event: CPU-hours, wall time on 16 cores and on 100 cores, disk of the Delphes
files (from the measured bytes per kept event under --outdir).
"""
from __future__ import annotations

import argparse
import json
import math
import re
from collections import defaultdict
from pathlib import Path

import yaml

RULE = re.compile(r"^rule_(?P<rule>[a-z_]+?)(?:_wildcards_(?P<wildcards>.*))?$")


def seconds(text: str) -> float:
    """sacct's [DD-][HH:]MM:SS[.mmm] as seconds (empty -> 0)."""
    if not text:
        return 0.0
    days, _, rest = text.rpartition("-")
    parts = [float(p) for p in rest.split(":")]
    while len(parts) < 3:
        parts.insert(0, 0.0)
    return float(days or 0) * 86400 + parts[0] * 3600 + parts[1] * 60 + parts[2]


def megabytes(text: str) -> float:
    """sacct's MaxRSS (e.g. 917164K) in MB (1e6 bytes)."""
    if not text:
        return 0.0
    units = {"K": 1e3, "M": 1e6, "G": 1e9}
    return float(text[:-1]) * units[text[-1]] / 1e6 if text[-1] in units else float(text) / 1e6


def read_jobs(path: Path) -> list[dict]:
    """One record per job: rule, wildcards, state, elapsed and CPU seconds, peak RSS over its steps (MB)."""
    jobs: dict[str, dict] = {}
    lines = path.read_text().splitlines()
    header = lines[0].split("|")
    for line in lines[1:]:
        row = dict(zip(header, line.split("|"), strict=False))
        job, _, step = row["JobID"].partition(".")
        if not step:
            match = RULE.match(row.get("Comment", ""))
            if not match:
                continue
            jobs[job] = {"rule": match["rule"], "wildcards": match["wildcards"] or "", "state": row["State"],
                         "elapsed_s": seconds(row["Elapsed"]), "cpu_s": seconds(row["TotalCPU"]), "rss_mb": 0.0}
        elif job in jobs:
            jobs[job]["rss_mb"] = max(jobs[job]["rss_mb"], megabytes(row["MaxRSS"]))
    return list(jobs.values())


def kept_events(outdir: Path, sample: str, chunk: str) -> int | None:
    """Kept events of one simulation chunk, from its generator record."""
    record = outdir / sample / "generator" / f"chunk{chunk}.json"
    return int(json.loads(record.read_text())["generation"]["kept"]) if record.exists() else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("sacct", type=Path, help="output of sacct -P -o JobID,State,Elapsed,TotalCPU,MaxRSS,Comment")
    parser.add_argument("--outdir", type=Path, required=True, help="the run's output folder (chunk records, files)")
    parser.add_argument("--profile", type=Path, help="a profile's config file to project (simulation section)")
    args = parser.parse_args()

    jobs = read_jobs(args.sacct)
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for job in jobs:
        sample = job["wildcards"].split("_")[0] if job["rule"] == "simulate_chunk" else ""
        if sample:
            job["kept"] = kept_events(args.outdir, sample, job["wildcards"].split("_")[-1])
        groups[(job["rule"], sample)].append(job)

    print("| rule | sample | jobs | states | CPU per job [s] (min-max) | CPU per kept event [ms] | "
          "peak RSS [MB] (max) | elapsed per job [s] |")
    print("|---|---|---|---|---|---|---|---|")
    per_event: dict[str, float] = {}
    for (rule, sample), group in sorted(groups.items()):
        states = ", ".join(f"{n} {s}" for s, n in sorted(_count(j["state"] for j in group).items()))
        cpu = [j["cpu_s"] for j in group]
        kept = sum(j.get("kept") or 0 for j in group)
        ms = f"{1e3 * sum(cpu) / kept:.0f}" if kept else ""
        if kept:
            per_event[sample] = sum(cpu) / kept
        elapsed = [j["elapsed_s"] for j in group]
        spread = f"{sum(cpu) / len(cpu):.0f} ({min(cpu):.0f}-{max(cpu):.0f})"
        print(f"| {rule} | {sample} | {len(group)} | {states} | {spread} | {ms} | "
              f"{max(j['rss_mb'] for j in group):.0f} | {sum(elapsed) / len(elapsed):.0f} |")

    if not args.profile:
        return
    sim = yaml.safe_load(args.profile.read_text())["simulation"]
    n_events, chunk = int(sim["events_per_sample"]), int(sim["events_per_chunk"])
    pileup = [j for j in jobs if j["rule"] == "pileup_library"]
    disk_gb = {}
    for sample in per_event:
        files = sorted((args.outdir / sample / "delphes").glob("chunk*.root"))
        kept = sum(kept_events(args.outdir, sample, f.stem.removeprefix("chunk")) or 0 for f in files)
        disk_gb[sample] = sum(f.stat().st_size for f in files) / kept * n_events / 1e9 if kept else math.nan
    print(f"\nProjection of {args.profile} ({n_events:,} kept events per sample in chunks of {chunk:,}; "
          f"pile-up library of {sim.get('pileup_events')} events):\n")
    print("| stage | jobs | CPU-hours | wall on 16 cores [h] | wall on 100 cores [h] | disk [GB] |")
    print("|---|---|---|---|---|---|")
    total_cpu, total_jobs = 0.0, 0
    for sample, s_per_event in sorted(per_event.items()):
        n_jobs = math.ceil(n_events / chunk)
        cpu_h = s_per_event * n_events / 3600
        job_h = s_per_event * chunk / 3600
        total_cpu, total_jobs = total_cpu + cpu_h, total_jobs + n_jobs
        print(f"| simulate_chunk {sample} | {n_jobs} | {cpu_h:.1f} | {math.ceil(n_jobs / 16) * job_h:.1f} | "
              f"{math.ceil(n_jobs / 100) * job_h:.1f} | {disk_gb[sample]:.1f} |")
    if pileup:
        cpu_h = pileup[0]["cpu_s"] / 3600
        print(f"| pileup_library | 1 | {cpu_h:.2f} | {cpu_h:.2f} | {cpu_h:.2f} | |")
        total_cpu += cpu_h
    print(f"| **simulation in all** | {total_jobs + 1} | **{total_cpu:.1f}** | | | {sum(disk_gb.values()):.1f} |")


def _count(values) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for v in values:
        counts[v] += 1
    return counts


if __name__ == "__main__":
    main()

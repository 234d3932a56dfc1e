"""Where Snakemake itself would run each job: `python software_plan.py OUT.json ARGS...`.

Runs Snakemake's own command line as `snakemake -n ARGS...` (profiles, --use-singularity,
--use-conda and all, parsed by Snakemake) and writes to OUT.json, for every job the dry run
plans, what Snakemake resolved for it: the container image it would wrap the job in
(`Job.container_img`, the property its executors use), the conda environment file and the image
that environment lives in (`Job.conda_env`, under --use-conda), and the shell command; plus the
shell prefix Snakemake puts before every command and the apptainer arguments. Nothing is
executed: a dry run pulls no image and builds no environment.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from snakemake import cli
from snakemake.executors import dryrun
from snakemake.settings.types import DeploymentMethod
from snakemake.shell import shell


def _record(job, conda: bool) -> dict:
    # as Snakemake's executors decide (executors/local.py): the image only under apptainer
    # (Job.container_img checks that), the environment only under conda
    image, env = job.container_img, job.conda_env if conda else None
    return {
        "rule": job.rule.name,
        "image": image.url if image else None,
        "conda_env": str(env.file.get_path_or_uri(secret_free=True)) if env else None,
        "conda_env_image": env._container_img.url if env and env._container_img else None,
        "command": job.shellcmd,
    }


def main(out: Path, args: list[str]) -> None:
    jobs: list[dict] = []
    deployment: dict = {}
    run_job = dryrun.Executor.run_job

    def recording_run_job(self, job):
        settings = self.workflow.deployment_settings
        deployment.update(methods=sorted(m.name for m in settings.deployment_method),
                          apptainer_args=settings.apptainer_args)
        conda = DeploymentMethod.CONDA in settings.deployment_method
        jobs.extend(_record(j, conda) for j in (job.jobs if job.is_group() else [job]))
        return run_job(self, job)

    dryrun.Executor.run_job = recording_run_job
    status = 1
    try:
        cli.main(["-n", *args])
    except SystemExit as exc:
        status = exc.code
    finally:
        plan = {"status": status, "prefix": shell._get_process_prefix(), **deployment, "jobs": jobs}
        out.write_text(json.dumps(plan, indent=1))
    sys.exit(status)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:])

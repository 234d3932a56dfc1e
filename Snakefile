# Sparse muon-image generation pipeline (Lu et al., "Sparse Image Generation with Decoupled
# Generative Models", NeurIPS 2019 ML4PS).
#
#   snakemake --cores all                 the whole pipeline (default config.yaml)
#   snakemake --cores all simulate        Delphes ROOT files only
#   snakemake --cores all images          + images.h5
#   snakemake --cores all train           + trained models
#   snakemake --cores all figures         figures/tables from cached samples and models
#   snakemake --cores all fidelity        detector-fidelity study (cards x renderings, docs/fidelity.md)
#   snakemake --cores 16 --use-singularity        MadGraph/Pythia/Delphes in containers, Python stages in this venv
#   snakemake --profile workflow/profiles/paper    paper scale: the line above + paper.yaml (envs/containers.md)
#
# Rules hold no physics: each calls a package CLI with explicit paths and its config section (--config-json).
import os

from snakemake.utils import min_version

min_version("9.0")


# Defaults come from the project's config.yaml; `--configfile my.yaml` overrides keys of it.
configfile: os.path.join(workflow.basedir, "config.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/simulation.smk"
include: "workflow/rules/imaging.smk"
include: "workflow/rules/training.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/fidelity.smk"


localrules: all, simulate, images, train, figures


rule all:
    input:
        simulation_targets(),
        imaging_targets(),
        training_targets(),
        analysis_targets(),
    default_target: True


rule simulate:
    input:
        simulation_targets(),


rule images:
    input:
        imaging_targets(),


rule train:
    input:
        training_targets(),


rule figures:
    input:
        analysis_targets(),

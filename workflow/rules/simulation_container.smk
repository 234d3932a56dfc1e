# Simulation, container backend (config simulation.backend: container), run with
#   snakemake --cores 16 --use-singularity   (profiles: workflow/profiles/paper, .../slurm)
#
#   MadGraph5_aMC@NLO gridpack per sample  ->  LHE per chunk  ->  Pythia 8 shower
#   (MG5aMC_PY8_interface)  ->  muon filter  ->  Delphes with pile-up  ->  chunk ROOT
#
# Same outputs, chunks and seeds as the native rules (simulation.smk): the pile-up library
# {outdir}/pileup/minbias.pileup and {outdir}/{sample}/delphes/chunk{i}.root (tree Delphes,
# same Delphes card). Seeds: chunk_seed(seed, sample, chunk, stream), stream "madgraph" for
# the gridpack's run.sh, "pythia" for the shower, "delphes" for Delphes (as native).
# Included by simulation.smk when simulation.backend == "container" (uses its SIM_CARD,
# _kept_in_chunk and simulation_targets). Rules hold no logic:
# each calls a script or CLI of simulation/container/ (see envs/containers.md).
from common.seeds import chunk_seed

# simulation.container is checked here (defaults filled in) against the container backend's
# own schema; the simulation schema leaves the section open.
_validate_section(SIM.setdefault("container", {}), PROJECT_DIR / "simulation" / "container" / "config.schema.yaml",
                  ("simulation", "container"))
_CT = SIM["container"]
CONTAINER_IMAGE = _CT["image"]  # MG5 + Pythia 8 + Delphes (public image, envs/containers.md)
CONTAINER_SCRIPTS = PROJECT_DIR / "simulation" / "container"
# Rules with `container: CONTAINER_IMAGE` run MadGraph, Pythia and Delphes in that image. The
# rules that run the project's Python (the cheap local rendering rules of cards and command
# files, and the min-bias generation) are Python stages like imaging: `conda: CONDA_ENV` and
# `python -m ...`, on this machine unless --use-conda is given too (common.smk).

localrules:
    container_mg5_script,
    container_shower_card,
    container_delphes_card,


rule container_mg5_script:
    output:
        sim_out("{sample}", "madgraph", "gridpack.mg5"),
    params:
        process_dir=sim_out("{sample}", "madgraph", "process"),
        nb_core=_CT["gridpack_threads"],
    log:
        LOGS / "container_mg5_script" / "{sample}.log",
    conda:
        CONDA_ENV
    shell:
        "python -m simulation.container mg5-script --sample {wildcards.sample}"
        " --process-dir {params.process_dir} --nb-core {params.nb_core} --out {output} > {log} 2>&1"


rule container_mg5_gridpack:
    input:
        script=rules.container_mg5_script.output,
        cards=lambda w: [str(PROJECT_DIR / "simulation" / "cards" / "madgraph" / f"{w.sample}_{kind}.dat")
                         for kind in ("proc", "run")],
    output:
        sim_out("{sample}", "madgraph", "gridpack.tar.gz"),
    params:
        process_dir=sim_out("{sample}", "madgraph", "process"),
        mg5=_CT["mg5"],
    log:
        LOGS / "container_mg5_gridpack" / "{sample}.log",
    benchmark:
        BENCH / "container_mg5_gridpack" / "{sample}.tsv"
    threads: _CT["gridpack_threads"]
    resources:
        mem_mb=max(8000, 1000 * _CT["gridpack_threads"]),  # 16 GB for the paper's 16 threads (compile + integrate)
        runtime=240,
    container:
        CONTAINER_IMAGE
    shell:
        "rm -rf {params.process_dir} && {params.mg5} {input.script} > {log} 2>&1"
        " && mv {params.process_dir}/run_01_gridpack.tar.gz {output} && rm -rf {params.process_dir}"


rule container_lhe:
    input:
        script=CONTAINER_SCRIPTS / "gridpack_events.sh",
        gridpack=rules.container_mg5_gridpack.output,
    output:
        temp(sim_out("{sample}", "madgraph", "chunk{chunk}.lhe.gz")),
    params:
        n_events=container_lhe_events,
        seed=lambda w: chunk_seed(SEED, w.sample, int(w.chunk), "madgraph"),
    log:
        LOGS / "container_lhe" / "{sample}_chunk{chunk}.log",
    benchmark:
        BENCH / "container_lhe" / "{sample}_chunk{chunk}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    container:
        CONTAINER_IMAGE
    shell:
        "bash {input.script} {input.gridpack} {params.n_events} {params.seed} {output} > {log} 2>&1"


rule container_shower_card:
    input:
        lhe=rules.container_lhe.output,
    output:
        _work("shower.cmnd"),
    params:
        n_events=container_lhe_events,
        seed=lambda w: chunk_seed(SEED, w.sample, int(w.chunk), "pythia"),
        settings=simulation_settings("shower-card"),
    log:
        LOGS / "container_shower_card" / "{sample}_chunk{chunk}.log",
    conda:
        CONDA_ENV
    shell:
        "python -m simulation.container shower-card --sample {wildcards.sample} --lhe {input.lhe}"
        " --hepmc /dev/fd/3 --seed {params.seed} --n-events {params.n_events} --config-json {params.settings:q}"
        " --out {output} > {log} 2>&1"


rule container_delphes_card:
    input:
        card=SIM_CARD,
        pileup=sim_out("pileup", "minbias.pileup"),
    output:
        _work("delphes.tcl"),
    params:
        seed=lambda w: chunk_seed(SEED, w.sample, int(w.chunk), "delphes"),
        settings=simulation_settings("delphes-card"),
    log:
        LOGS / "container_delphes_card" / "{sample}_chunk{chunk}.log",
    conda:
        CONDA_ENV
    shell:
        "python -m simulation.container delphes-card --card {input.card} --pileup {input.pileup}"
        " --seed {params.seed} --config-json {params.settings:q} --out {output} > {log} 2>&1"


rule container_shower_delphes:
    input:
        script=CONTAINER_SCRIPTS / "shower_to_delphes.sh",
        lhe=rules.container_lhe.output,
        cmnd=rules.container_shower_card.output,
        card=rules.container_delphes_card.output,
        pileup=sim_out("pileup", "minbias.pileup"),
    output:
        root=sim_out("{sample}", "delphes", "chunk{chunk}.root"),
        counts=sim_out("{sample}", "generator", "chunk{chunk}.json"),
    params:
        shower=_CT["shower_command"],
        delphes=os.path.join(_CT["delphes_bin"], "DelphesHepMC2"),
        pt_min=SIM["muon_filter"]["pt_min_gev"],
        pt_max=SIM["muon_filter"]["pt_max_gev"],
        eta_max=SIM["muon_filter"]["abs_eta_max"],
    log:
        LOGS / "container_shower_delphes" / "{sample}_chunk{chunk}.log",
    benchmark:
        BENCH / "container_shower_delphes" / "{sample}_chunk{chunk}.tsv"
    threads: 2  # Pythia and Delphes run side by side through a pipe
    resources:
        mem_mb=4000,
        runtime=240,
    container:
        CONTAINER_IMAGE
    shell:
        "bash {input.script} '{params.shower}' {input.cmnd}"
        " {params.pt_min} {params.pt_max} {params.eta_max} {output.counts} {params.delphes}"
        " {input.card} {output.root} > {log} 2>&1"


rule container_minbias_hepmc:
    output:
        temp(sim_out("pileup", "minbias.hepmc")),
    params:
        seed=chunk_seed(SEED, "minbias", 0, "pythia"),
        settings=simulation_settings("minbias-hepmc"),
    log:
        LOGS / "container_minbias_hepmc.log",
    benchmark:
        BENCH / "container_minbias_hepmc.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=240,
    conda:
        CONDA_ENV
    shell:
        "python -m simulation.container minbias-hepmc --seed {params.seed} --config-json {params.settings:q}"
        " --out {output} > {log} 2>&1"


rule container_pileup_library:
    input:
        rules.container_minbias_hepmc.output,
    output:
        sim_out("pileup", "minbias.pileup"),
    params:
        hepmc2pileup=os.path.join(_CT["delphes_bin"], "hepmc2pileup"),
    log:
        LOGS / "container_pileup_library.log",
    benchmark:
        BENCH / "container_pileup_library.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    container:
        CONTAINER_IMAGE
    shell:
        "{params.hepmc2pileup} {output}.part {input} > {log} 2>&1 && mv {output}.part {output}"

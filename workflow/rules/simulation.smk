# Simulation: Pythia 8 hard process -> generator-level muon filter -> HepMC2 -> Delphes with
# a minimum-bias pile-up library (mean mu = 50) -> {sample}/delphes/chunk{i}.root.
# Code: simulation/ (python -m simulation --help). Config: `simulation:` in config.yaml,
# schema workflow/schemas/simulation.schema.yaml. Physics settings live in the cards
# (simulation/cards/*.cmnd, the Delphes .tcl), not here.
#
# Each sample's kept events are split into chunks (simulation.events_per_chunk), each with
# its own seeds derived from (seed, sample, chunk), so `--cores N` runs them in parallel.
# backend: native -> the rules below; container -> simulation_container.smk (same outputs).
SIM_CARD = str(PROJECT_DIR / SIM["delphes_card"])


if SIM["backend"] == "container":
    if SIM["pthat_min_gev"] is not None:
        raise WorkflowError("simulation.pthat_min_gev is a native-backend setting; with the container backend "
                            "the b threshold is `ptb` in simulation/cards/madgraph/background_run.dat")
    if not (PROJECT_DIR / "workflow" / "rules" / "simulation_container.smk").exists():
        raise WorkflowError("simulation.backend: container is not implemented yet (issue 8); "
                            "use simulation.backend: native")

    include: "simulation_container.smk"

else:

    rule pileup_library:
        output:
            library=sim_out("pileup", "minbias.pileup"),
            stats=sim_out("pileup", "minbias.json"),
        log:
            LOGS / "simulation" / "pileup_library.log",
        benchmark:
            BENCH / "simulation" / "pileup_library.tsv"
        threads: 1  # Pythia streams into hepmc2pileup, which takes little CPU
        resources:
            mem_mb=4000,
            runtime=60,
        conda:
            CONDA_ENV
        params:
            seed=SEED,
            settings=simulation_settings("pileup"),
        shell:
            "python -m simulation pileup --seed {params.seed} --config-json {params.settings:q}"
            " --out {output.library} --stats {output.stats} > {log} 2>&1"

    if SIM["transport"] == "pipe":

        rule simulate_chunk:
            input:
                pileup=rules.pileup_library.output.library,
                card=SIM_CARD,
            output:
                root=sim_out("{sample}", "delphes", "chunk{chunk}.root"),
                stats=sim_out("{sample}", "generator", "chunk{chunk}.json"),
            log:
                LOGS / "simulation" / "{sample}_chunk{chunk}.log",
            benchmark:
                BENCH / "simulation" / "{sample}_chunk{chunk}.tsv"
            threads: 1  # Pythia and Delphes stream through a pipe; Delphes mostly waits (see report)
            resources:
                mem_mb=3000,  # Pythia + Delphes with the pile-up library (paper scale: 2,500 events, 4-9 CPU-min)
                runtime=120,
            conda:
                CONDA_ENV
            params:
                n_kept=_kept_in_chunk,
                seed=SEED,
                settings=lambda w: simulation_settings("chunk", w.sample),
            shell:
                "python -m simulation chunk --sample {wildcards.sample} --chunk {wildcards.chunk}"
                " --n-kept {params.n_kept} --seed {params.seed} --config-json {params.settings:q}"
                " --pileup {input.pileup} --card {input.card}"
                " --out {output.root} --stats {output.stats} > {log} 2>&1"

    else:

        rule generate_chunk:
            output:
                hepmc=temp(sim_out("{sample}", "hepmc", "chunk{chunk}.hepmc")),
                stats=sim_out("{sample}", "generator", "chunk{chunk}.json"),
            log:
                LOGS / "simulation" / "{sample}_chunk{chunk}_generate.log",
            benchmark:
                BENCH / "simulation" / "{sample}_chunk{chunk}_generate.tsv"
            threads: 1
            resources:
                mem_mb=2000,
                runtime=120,
            conda:
                CONDA_ENV
            params:
                n_kept=_kept_in_chunk,
                seed=SEED,
                settings=lambda w: simulation_settings("generate", w.sample),
            shell:
                "python -m simulation generate --sample {wildcards.sample} --chunk {wildcards.chunk}"
                " --n-kept {params.n_kept} --seed {params.seed} --config-json {params.settings:q}"
                " --out {output.hepmc} --stats {output.stats} > {log} 2>&1"

        rule delphes_chunk:
            input:
                hepmc=rules.generate_chunk.output.hepmc,
                stats=rules.generate_chunk.output.stats,
                pileup=rules.pileup_library.output.library,
                card=SIM_CARD,
            output:
                sim_out("{sample}", "delphes", "chunk{chunk}.root"),
            log:
                LOGS / "simulation" / "{sample}_chunk{chunk}_delphes.log",
            benchmark:
                BENCH / "simulation" / "{sample}_chunk{chunk}_delphes.tsv"
            threads: 1
            resources:
                mem_mb=1500,
                runtime=60,
            conda:
                CONDA_ENV
            params:
                seed=SEED,
                settings=simulation_settings("delphes"),
            shell:
                "python -m simulation delphes --in {input.hepmc} --stats {input.stats}"
                " --sample {wildcards.sample} --chunk {wildcards.chunk} --seed {params.seed}"
                " --pileup {input.pileup} --card {input.card} --config-json {params.settings:q}"
                " --out {output} > {log} 2>&1"


# Not part of `all`: the background pT-hat threshold study behind cards/background.cmnd, at
# generator level (snakemake --cores 2 <outdir>/simulation/pthat_threshold.png); what the
# thresholds do to the images is in the fidelity study (fidelity.smk, docs/fidelity.md).
rule pthat_threshold_study:
    output:
        figure=out("simulation", "pthat_threshold.png"),
        table=out("simulation", "pthat_threshold.csv"),
    log:
        LOGS / "simulation" / "pthat_threshold_study.log",
    benchmark:
        BENCH / "simulation" / "pthat_threshold_study.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=120,
    conda:
        CONDA_ENV
    params:
        seed=SEED,
        settings=simulation_settings("spectrum"),
    shell:
        "python -m simulation spectrum --pthat-min 5 10 15 20 --n-events 12000 --seed {params.seed}"
        " --config-json {params.settings:q} --out {output.figure} --csv {output.table} > {log} 2>&1"

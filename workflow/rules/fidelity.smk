# Detector-fidelity study (not part of `all`):  snakemake --cores all fidelity
# docs/fidelity.md holds its table, figure and reading.
#
# The same generated events (Pythia -> muon filter -> HepMC2, made once per event set) go
# through every Delphes card of `fidelity.cards`; each Delphes output is imaged with every
# rendering of `fidelity.tower_shapes`; b bbar events generated at the other pT-hat thresholds
# of `fidelity.pthat_min_gev` go through the cards of `fidelity.pthat_cards`. One record per
# variant (card / rendering / threshold), then one table and one figure:
#   <outdir>/fidelity/fidelity.{csv,md}, <outdir>/fidelity/fidelity_average_images.png
# Seeds, pile-up library and chunking are those of the main run, so a variant's files equal
# what the main pipeline makes with that card, rendering and threshold.
import json

FID_DIR = ("fidelity",)
FID_CARDS = {name: card for name, card in FID["cards"].items() if card}  # null leaves a card out
if not FID_CARDS:
    raise WorkflowError("config fidelity.cards: every card is null; name at least one Delphes card")
_DEFAULT_PTHAT = FID["pthat_min_gev"][0]


_bad_pthat = [c for c in FID["pthat_cards"] if c not in FID_CARDS]
if _bad_pthat:
    raise WorkflowError(f"config fidelity.pthat_cards: {_bad_pthat} are not in fidelity.cards ({sorted(FID_CARDS)})")

_FID_VARIANTS = {variant_key(v[0]): v for v in fidelity_variants()}


wildcard_constraints:
    card="|".join(FID_CARDS),
    shape="point|cell|mixed",
    events=r"signal|background(_pthat[0-9.]+)?",
    variant=r"[A-Za-z0-9_.]+",


rule fidelity_generate:
    """One chunk of one event set: Pythia -> muon filter -> HepMC2 file (kept for every card)."""
    output:
        hepmc=out(*FID_DIR, "events", "{events}", "chunk{chunk}.hepmc"),
        stats=out(*FID_DIR, "events", "{events}", "chunk{chunk}.json"),
    log:
        LOGS / "fidelity" / "generate_{events}_chunk{chunk}.log",
    benchmark:
        BENCH / "fidelity" / "generate_{events}_chunk{chunk}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=120,
    conda:
        CONDA_ENV
    params:
        sample=lambda w: w.events.split("_")[0],
        n_kept=lambda w: chunk_sizes(FID["events_per_sample"], FID["events_per_chunk"])[int(w.chunk)],
        seed=SEED,
        # the main run's settings, at the event set's pT-hat threshold (background only)
        settings=lambda w: simulation_settings("generate", w.events.split("_")[0],
                                               {**SIM, "pthat_min_gev": _pthat_of(w.events)}),
    shell:
        "python -m simulation generate --sample {params.sample} --chunk {wildcards.chunk}"
        " --n-kept {params.n_kept} --seed {params.seed} --config-json {params.settings:q}"
        " --out {output.hepmc} --stats {output.stats} > {log} 2>&1"


rule fidelity_delphes:
    """Delphes with one card on one chunk of generated events (pile-up library of the main run)."""
    input:
        hepmc=rules.fidelity_generate.output.hepmc,
        stats=rules.fidelity_generate.output.stats,
        pileup=sim_out("pileup", "minbias.pileup"),
        card=lambda w: str(PROJECT_DIR / FID_CARDS[w.card]),
    output:
        out(*FID_DIR, "delphes", "{card}", "{events}", "chunk{chunk}.root"),
    log:
        LOGS / "fidelity" / "delphes_{card}_{events}_chunk{chunk}.log",
    benchmark:
        BENCH / "fidelity" / "delphes_{card}_{events}_chunk{chunk}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    conda:
        CONDA_ENV
    params:
        sample=lambda w: w.events.split("_")[0],
        seed=SEED,
        settings=simulation_settings("delphes"),
    shell:
        "python -m simulation delphes --in {input.hepmc} --stats {input.stats}"
        " --sample {params.sample} --chunk {wildcards.chunk} --seed {params.seed}"
        " --pileup {input.pileup} --card {input.card} --config-json {params.settings:q}"
        " --out {output} > {log} 2>&1"


rule fidelity_images:
    """Images of one event set through one card, drawn with one tower rendering."""
    input:
        chunks=lambda w: _fid_delphes(w.card, w.events),
        reference=_fid_reference,
    output:
        out(*FID_DIR, "images", "{card}", "{shape}", "{events}.h5"),
    log:
        LOGS / "fidelity" / "images_{card}_{shape}_{events}.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        CONDA_ENV
    params:
        sample=lambda w: w.events.split("_")[0],
        settings=lambda w: section_json(IMAGING, tower_shape=w.shape),
        seed=SEED,
    shell:
        "python -m imaging build --in {input.chunks} --out {output} --sample {params.sample}"
        " --reweight-to '{input.reference}' --seed {params.seed} --no-progress --config-json {params.settings:q}"
        " > {log} 2>&1"


rule fidelity_variant:
    """Fidelity figures of one variant (both classes): sparsity, isolation, radial profile, baseline."""
    input:
        unpack(_fid_variant_inputs),
    output:
        out(*FID_DIR, "records", "{variant}.json"),
    log:
        LOGS / "fidelity" / "variant_{variant}.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        CONDA_ENV
    params:
        name=lambda w: _FID_VARIANTS[w.variant][0],
        describe=lambda w: json.dumps(dict(zip(("card", "tower_shape", "pthat_min_gev"),
                                               (_FID_VARIANTS[w.variant][i] for i in (1, 2, 4))))),
        settings=analysis_settings("fidelity-variant"),
        seed=SEED,
        n_baseline=FID["n_baseline"],
    shell:
        "python -m analysis fidelity-variant --name {params.name} --signal {input.signal}"
        " --background {input.background} --delphes-signal {input.delphes_signal}"
        " --delphes-background {input.delphes_background} --describe '{params.describe}'"
        " --config-json {params.settings:q} --seed {params.seed} --n-baseline {params.n_baseline}"
        " --out {output} > {log} 2>&1"


rule fidelity_table:
    """The study's table (CSV + Markdown) and average-image figure."""
    input:
        [_fid_record(v[0]) for v in fidelity_variants()],
    output:
        csv=out(*FID_DIR, "fidelity.csv"),
        md=out(*FID_DIR, "fidelity.md"),
        figure=out(*FID_DIR, "fidelity_average_images.png"),
    log:
        LOGS / "fidelity" / "table.log",
    conda:
        CONDA_ENV
    params:
        settings=analysis_settings("fidelity-table"),
    shell:
        "python -m analysis fidelity-table --records {input} --config-json {params.settings:q}"
        " --out-csv {output.csv} --out-md {output.md} --out-figure {output.figure} > {log} 2>&1"


localrules: fidelity, fidelity_table


rule fidelity:
    """Target of the study: snakemake --cores all fidelity."""
    input:
        rules.fidelity_table.output,

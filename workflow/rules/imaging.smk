# Imaging: Delphes chunk files -> muon-centred 32x32 calorimeter images (images.h5).
# Code: imaging/ (python -m imaging build --help). Config: `imaging:` in config.yaml,
# schema workflow/schemas/imaging.schema.yaml.
#
# Reweighting: the signal's muon-pT histogram is matched to the background's, so the signal
# rule takes background/images.h5 (weights 1) as a reference input and the background is
# imaged first. Without a configured background sample the signal keeps its event weights
# and the CLI logs a warning.


rule build_images:
    input:
        chunks=_delphes_chunks,
        reference=_reweight_reference,
    output:
        out("{sample}", "images.h5"),
    log:
        LOGS / "imaging" / "{sample}.log",
    benchmark:
        BENCH / "imaging" / "{sample}.tsv"
    threads: 1
    resources:
        mem_mb=lambda wildcards, input: 2000 + 3 * int(input.size_mb),
        runtime=60,
    conda:
        CONDA_ENV
    params:
        settings=section_json(IMAGING),
        seed=SEED,
    shell:
        "python -m imaging build --in {input.chunks} --out {output} --sample {wildcards.sample}"
        " --reweight-to '{input.reference}' --seed {params.seed} --no-progress --config-json {params.settings:q}"
        " > {log} 2>&1"


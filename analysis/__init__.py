"""Analysis stage: isolation, distances (EMD, separation power), CaloChallenge-style metrics,
the paper's Figures 2 and 3, and tables, all computed from images.h5-schema files.

Run `python -m analysis --help` for the command-line interface the Snakemake rules call.
"""

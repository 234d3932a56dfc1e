"""Which keys of the config's `simulation:` section each `python -m simulation` command reads.

The rules pass exactly these keys as --config-json (so, e.g., a larger events_per_sample adds
chunks without rerunning the existing ones) and the CLI builds its settings from exactly these
(schema defaults for keys a by-hand call leaves out); keys, types and defaults:
workflow/schemas/simulation.schema.yaml. The per-chunk job coordinates (sample, chunk, kept
events, master seed) and the files are flags. No heavy imports: the workflow reads this table.
"""
from __future__ import annotations

READS: dict[str, tuple[str, ...]] = {
    "pileup": ("pileup_events", "batch_size"),
    "chunk": ("muon_filter", "force_muonic_b_decays", "batch_size", "pthat_min_gev", "mean_pileup"),
    "generate": ("muon_filter", "force_muonic_b_decays", "batch_size", "pthat_min_gev"),
    "delphes": ("mean_pileup",),
    "card": ("mean_pileup",),
    "spectrum": ("force_muonic_b_decays",),
    # python -m simulation.container (the container backend's rendering commands)
    "shower-card": ("force_muonic_b_decays",),
    "delphes-card": ("mean_pileup",),
    "minbias-hepmc": ("pileup_events",),
}


def reads(command: str, sample: str | None = None) -> tuple[str, ...]:
    """The keys `command` reads for `sample`: the pT-hat threshold applies to the background (b bbar) only."""
    keys = READS[command]
    if sample is not None and sample != "background":
        keys = tuple(k for k in keys if k != "pthat_min_gev")
    return keys

"""Which keys of the config's `analysis:` section each `python -m analysis` command reads.

The rules pass exactly these keys as --config-json (so changing a plot key reruns the plots,
not the metrics) and the CLI builds its settings from exactly these (schema defaults for the
keys a by-hand call leaves out); keys, types and defaults: workflow/schemas/analysis.schema.yaml.
No heavy imports here: the workflow reads this table when it builds the DAG.
"""
from __future__ import annotations

READS: dict[str, tuple[str, ...]] = {
    "metrics": ("isolation_cone", "metrics", "max_images"),
    "emd-table": (),
    "metrics-table": (),
    "results-table": (),
    "simulation-cost": (),
    "figure2": ("isolation_cone", "figure2", "plots", "max_images"),
    "figure3": ("figure3", "plots", "max_images"),
    "radial-profile": ("radial_profile", "plots", "max_images"),
    "features": ("isolation_cone", "features", "plots", "max_images"),
    "fidelity-variant": ("isolation_cone", "metrics"),
    "fidelity-table": ("plots",),
}

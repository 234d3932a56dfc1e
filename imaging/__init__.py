"""Imaging stage: Delphes ROOT -> muon selection -> muon-centred calorimeter images -> HDF5.

Modules (one job each):

- `reader`      columnar, chunked reading of only the needed Delphes branches (uproot)
- `selection`   muon pT window and acceptance; leading muon per event or all muons
- `geometry`    delta-phi wrapping, delta-R, pixel grid (the one place for them)
- `towers`      the towers of each image (`TowerSet`, relative to the muon) and `render_towers`,
                the one rendering of towers into npix x npix (d-eta, d-phi) pixels, for real
                and generated towers alike
- `reweight`    signal weights matching the background muon-pT histogram
- `statistics`  per-sample counts, zero-pixel fraction, weighted mean muon pT
- `build`       the stage end to end, and writing images.h5 with provenance
- `h5schema`    the images.h5 contract shared by every later stage (provenance: `common`),
                with the towers behind each image from schema_version 2

CLI: ``python -m imaging {build,info} --help``.

Choices (config `imaging:`, schema workflow/schemas/imaging.schema.yaml):

- One image per event, centred on the leading selected muon (`muons_per_event: leading`);
  `all` makes one image per selected muon.
- Weights: background = Delphes Event.Weight normalised to mean 1 (exactly 1 for
  unweighted generation). The signal is reweighted bin by bin (`reweight_pt_bins` over the
  muon-pT window) to the weighted muon-pT histogram of the background images.h5, which the
  signal rule takes as an input (so the background is imaged first); without a background
  sample the signal keeps its event weights and a warning is logged.
- Reading needs only Tower.Eta/Phi/ET/Eem/Ehad/Edges, Muon.PT/Eta/Phi/Charge and Event.Weight;
  the images are `render_towers` of the stored towers (`tower_shape` point, cell or mixed).
"""

__all__ = ["ImagingConfig", "ImagingError", "build_images", "write_images"]

from .build import build_images, write_images
from .config import ImagingConfig
from .errors import ImagingError

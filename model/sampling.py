"""Generated images from a trained model, written in the images.h5 schema.

x = z * beta with z ~ Bern(sigmoid(logit)) and beta ~ p(. | eta), one fresh noise vector per
image, in batches on the chosen device. For unconditional models /muon/pt holds the weighted
mean real muon pT for every image (the paper's approximation), noted in the attrs. A
pT-conditional model generates each image at a pT drawn (seeded) from the weighted pT
distribution of the real images (`--real`), and /muon/pt holds that pT.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from imaging.h5schema import ImageFileError, read_image_file, write_image_file
from common.provenance import file_digest, provenance

from .device import resolve_device
from .errors import ModelError
from .generators import Generator
from .likelihoods import NonZeroLikelihood
from common.seeds import derive_seed
from .training import load_model

log = logging.getLogger(__name__)

PT_NOTE = "unconditional model: /muon/pt is the weighted mean muon pT of the training images"
PT_NOTE_CONDITIONAL = (
    "pT-conditional model: /muon/pt is the pT each image was generated at, drawn from the weighted muon pT "
    "distribution of the real images"
)


@torch.no_grad()
def sample_images(
    generator: Generator,
    likelihood: NonZeroLikelihood,
    n: int,
    *,
    seed: int,
    batch_size: int = 4096,
    device: torch.device | str = "cpu",
    progress: bool = True,
    pt_gev: np.ndarray | torch.Tensor | None = None,
) -> np.ndarray:
    """(n, npix, npix) float32 generated images in GeV, reproducible for a given seed and device.

    pt_gev (n,): the muon pT (GeV) each image is generated at; required by (and only by)
    pT-conditional generators.
    """
    if n < 1:
        raise ModelError(f"number of images to generate must be >= 1, got {n}")
    pts = None
    if generator.spec.conditional:
        if pt_gev is None:
            raise ModelError("this generator is pT-conditional: give the muon pT of every image to generate")
        pts = torch.as_tensor(np.asarray(pt_gev, dtype=np.float32)).to(device)
        if tuple(pts.shape) != (n,) or not bool(torch.isfinite(pts).all()):
            raise ModelError(f"muon pT to generate at must be {n} finite values, got shape {tuple(pts.shape)}")
    elif pt_gev is not None:
        raise ModelError("this generator is unconditional; it cannot be sampled at given muon pTs")
    device = torch.device(device)
    generator = generator.to(device).eval()
    npix, noise_dim = generator.spec.npix, generator.spec.noise_dim
    rng = torch.Generator(device=device).manual_seed(int(seed))
    out = np.empty((n, npix, npix), dtype=np.float32)
    for start in tqdm(range(0, n, batch_size), desc="sample", unit="batch", disable=not progress, mininterval=2.0):
        k = min(batch_size, n - start)
        noise = torch.randn(k, noise_dim, generator=rng, device=device)
        logits, eta = generator(noise, None if pts is None else pts[start:start + k])  # (k, D)
        z = torch.rand(logits.shape, generator=rng, device=device) < torch.sigmoid(logits)
        values = likelihood.sample(eta, generator=rng)
        x = torch.where(z, values, torch.zeros_like(values))
        out[start:start + k] = x.view(k, npix, npix).cpu().numpy()
    return out


def draw_real_pt(real: str | Path, n: int, *, seed: int) -> np.ndarray:
    """(n,) float32 muon pTs (GeV) drawn with replacement from the real file, with probability ∝ weight."""
    try:
        data = read_image_file(real)
    except ImageFileError as exc:
        raise ModelError(str(exc)) from None
    pt, w = data.muon_pt.astype(np.float64), data.weight.astype(np.float64)
    usable = np.isfinite(pt) & (w > 0)
    if not usable.any():
        raise ModelError(f"{real}: no image has a finite /muon/pt and a positive weight; cannot draw pTs to generate at")
    pt, cdf = pt[usable], np.cumsum(w[usable])
    rng = np.random.default_rng(derive_seed(seed, "muon_pt"))
    idx = np.searchsorted(cdf / cdf[-1], rng.random(n), side="right").clip(max=len(cdf) - 1)
    return pt[idx].astype(np.float32)


def train_time_s(record: dict[str, Any]) -> float:
    """Seconds spent training a model: the sum of its per-epoch times (resumed epochs included)."""
    return float(sum(float(row.get("time_s", 0.0)) for row in record.get("log", [])))


def sample_to_file(
    model_path: str | Path,
    out_path: str | Path,
    *,
    n: int | None,
    seed: int,
    model_name: str,
    device: str = "auto",
    batch_size: int = 4096,
    progress: bool = True,
    real: str | Path | None = None,
) -> Path:
    """Sample n images (default: as many as the training set) from model.pt into an images.h5 file."""
    dev = resolve_device(device)
    generator, likelihood, record = load_model(model_path, device=dev)
    info = record["training_data"]
    n = int(info["n_images"]) if n is None else int(n)
    mean_pt = float(info["mean_muon_pt_gev"])
    conditional = bool(generator.spec.conditional)
    if conditional:
        if real is None:
            raise ModelError(
                f"{model_path} is a pT-conditional model: pass --real <the images.h5 it was trained on> so that the "
                "generated images get muon pTs drawn from the real weighted pT distribution"
            )
        if file_digest(real) != info["digest"]:
            log.warning("%s is not the file %s was trained on (digest differs); drawing pT from it anyway",
                        real, model_path)
        pt = draw_real_pt(real, n, seed=seed)
    else:
        pt = np.full(n, mean_pt, dtype=np.float32)
    log.info("sampling %d images from %s on %s%s", n, model_path, dev, " at real pTs" if conditional else "")
    images = sample_images(generator, likelihood, n, seed=seed, batch_size=batch_size, device=dev, progress=progress,
                           pt_gev=pt if conditional else None)
    extra: dict[str, Any] = {
        "model": model_name, "model_file_digest": file_digest(model_path), "training_data_digest": info["digest"],
        "muon_pt_note": PT_NOTE_CONDITIONAL if conditional else PT_NOTE, "mean_muon_pt_gev": mean_pt,
        "conditional": conditional, "likelihood": record["likelihood"]["name"], "objective": record["config"]["objective"],
        "arch": record["config"]["arch"],
        "family": record["config"].get("family", "decoupled"),
        "train_time_s": train_time_s(record),
        "real_images": str(real) if real is not None else "",
    }
    return write_image_file(
        out_path, images, pt, np.ones(n), sample=str(info["sample"]),
        radius=float(info["radius"]), kind="generated",
        provenance=provenance(record["config"], sampling_seed=seed, model=model_name, device=str(dev)),
        extra_attrs=extra,
    )

"""The fast sampling loop gives the images of the plain one: per batch draw, generate, copy to the host.

model/batching.py writes into one buffer (on a GPU through a device staging buffer, flushed rarely),
runs in inference mode, and the deconv generator samples in the channels-last layout on the CPU;
none of this may change an image. Runs on CUDA too when torch sees a GPU.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from imaging.h5schema import read_image_file
from model import batching
from model.config import TrainConfig
from model.decoupled import init_model, sample_images
from model.device import resolve_device
from model.families import save_model, train
from model.sampling import sample_to_file

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU"))]
CFG = TrainConfig(arch="deconv", width=16, noise_dim=8, epochs=1, batch_size=128, K=16, seed=3, device="cpu")


def plain_loop(generator, likelihood, n: int, *, seed: int, batch_size: int, device: str) -> np.ndarray:
    """What sampling did before it was made fast: autograd on, default layout, one host copy per batch."""
    rng = torch.Generator(device=device).manual_seed(seed)
    out = []
    with torch.enable_grad():
        for start in range(0, n, batch_size):
            k = min(batch_size, n - start)
            noise = torch.randn(k, generator.spec.noise_dim, generator=rng, device=device)
            logits, eta = generator(noise)
            z = torch.rand(logits.shape, generator=rng, device=device) < torch.sigmoid(logits)
            values = likelihood.sample(eta, generator=rng)
            out.append(torch.where(z, values, torch.zeros_like(values)).detach().reshape(k, -1).cpu())
    return torch.cat(out).numpy().reshape(n, generator.spec.npix, generator.spec.npix)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("arch,width", [("fc", 32), ("deconv", 16)])
def test_fast_loop_gives_the_plain_loops_images(synthetic_data, device, arch, width, monkeypatch):
    # the pipeline's device set-up: on CUDA it makes cuDNN deterministic; without it the transposed
    # convolutions pick algorithms that differ in the last bits from call to call (seen on an H200)
    resolve_device(device)
    generator, likelihood = init_model(synthetic_data, dataclasses.replace(CFG, arch=arch, width=width))
    generator, likelihood = generator.to(device), likelihood.to(device)
    # a staging buffer of 3 images' bytes: on a GPU every batch flushes it (the many-flush path)
    monkeypatch.setattr(batching, "STAGING_BYTES", 3 * 4 * 32 * 32)
    for n, batch_size in ((500, 128), (77, 500), (256, 64)):
        fast = sample_images(generator, likelihood, n, seed=9, batch_size=batch_size, device=device, progress=False)
        plain = plain_loop(generator, likelihood, n, seed=9, batch_size=batch_size, device=device)
        assert fast.dtype == np.float32 and fast.shape == (n, 32, 32)
        assert np.array_equal(fast, plain), f"{arch} on {device}: n={n}, batch {batch_size}"
        assert 0 < np.count_nonzero(fast) < fast.size // 2  # sparse, not empty


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_images_left_on_the_device_are_the_copied_images(synthetic_data):
    generator, likelihood = init_model(synthetic_data, dataclasses.replace(CFG, arch="fc", width=32))
    generator, likelihood = generator.to("cuda"), likelihood.to("cuda")
    host = sample_images(generator, likelihood, 300, seed=4, batch_size=64, device="cuda", progress=False)
    with batching.images_stay_on_device():
        kept = sample_images(generator, likelihood, 300, seed=4, batch_size=64, device="cuda", progress=False)
    assert isinstance(kept, torch.Tensor) and kept.device.type == "cuda"
    assert np.array_equal(kept.cpu().numpy(), host)


def test_images_stay_on_the_host_when_sampling_on_the_cpu(synthetic_data):
    generator, likelihood = init_model(synthetic_data, dataclasses.replace(CFG, arch="fc", width=32))
    with batching.images_stay_on_device():  # a CPU loop has no device copy to skip
        images = sample_images(generator, likelihood, 30, seed=4, batch_size=16, progress=False)
    assert isinstance(images, np.ndarray) and images.shape == (30, 32, 32)


@pytest.mark.parametrize("device", DEVICES)
def test_staging_buffer_flushes_keep_every_image(synthetic_data, device, monkeypatch):
    generator, likelihood = init_model(synthetic_data, dataclasses.replace(CFG, arch="fc", width=32))
    generator, likelihood = generator.to(device), likelihood.to(device)
    one = sample_images(generator, likelihood, 300, seed=4, batch_size=40, device=device, progress=False)
    monkeypatch.setattr(batching, "STAGING_BYTES", 100 * 4 * 32 * 32)  # 100 images: flush every 2-3 batches
    staged = sample_images(generator, likelihood, 300, seed=4, batch_size=40, device=device, progress=False)
    assert np.array_equal(one, staged)


def test_deconv_channels_last_inference_gives_the_same_bits(synthetic_data):
    generator, _ = init_model(synthetic_data, dataclasses.replace(CFG, width=64, noise_dim=32))
    noise = torch.randn(300, 32, generator=torch.Generator().manual_seed(1))
    with torch.enable_grad():
        ref = [t.detach() for t in generator(noise)]
    with torch.inference_mode():
        fast = generator(noise)
    for a, b in zip(ref, fast, strict=True):
        assert torch.equal(a, b)


def test_sampled_file_records_what_sampling_cost(synthetic_file, synthetic_data, tmp_path):
    res = train(synthetic_data, dataclasses.replace(CFG, arch="fc", width=32), None, progress=False)
    model_path = save_model(tmp_path / "model.pt", res, synthetic_data)
    out = sample_to_file(model_path, tmp_path / "gen.h5", n=333, seed=1, model_name="m", device="cpu",
                         batch_size=100, progress=False, cuda_batch_size=50000)
    attrs = read_image_file(out).attrs
    assert attrs["sampling_device"] == "cpu" and attrs["sampling_batch_size"] == 100  # cuda size unused on a CPU
    assert attrs["sampling_threads"] == torch.get_num_threads() == 1
    assert attrs["sampling_loop_s"] > 0 and attrs["sampling_load_s"] > 0
    assert 0 < attrs["sampling_loop_cpu_s"] and 0 < attrs["sampling_load_cpu_s"]
    assert isinstance(attrs["sampling_device_name"], str) and attrs["sampling_device_name"]

"""One batch of simulated observations, end to end: observe, reconstruct with DDRM, compare.

For truths x (B, N, N) in image space and an operator H (design.md §1, §5):

    y = H (2x - 1) + σ_y z          (model-space measurements, z from each observation's generator)
    x̂_s = (DDRM(y) + 1) / 2 clipped to [0, 1],  s = 1..S
    dirty = Hᵀ y_img / psf_peak,    CLEAN = Hogbom(dirty, threshold = clean_sigmas · σ_dirty)

with y_img = (y + H 1)/2 the image-space measurements. The baselines are converted from Jy/beam
to flux per pixel (÷ clean-beam area) to compare with the truth. Tensors in, tensors out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import torch

from . import metrics
from .baselines import dirty_beam, dirty_image, dirty_noise_std, hogbom_clean
from .ddpm import Denoiser
from .operators import FourierSamplingOperator
from .sampler import DDRMConfig, ddrm_sample
from .schedule import Schedule
from .units import image_space_measurements, to_image, to_model

DDRM_METRICS = ("mse", "mse_mean", "psnr", "snr", "sre", "cov68", "cov95")
BASELINE_METRICS = ("mse", "psnr", "snr")


@dataclass(frozen=True)
class CleanConfig:
    """Hogbom CLEAN: loop gain, stop at ``threshold_sigmas`` × the dirty image's noise std, or ``max_iter``."""

    gain: float = 0.1
    threshold_sigmas: float = 3.0
    max_iter: int = 2000


@dataclass(frozen=True)
class BatchResult:
    """samples (B, S, N, N) in [0, 1]; mean, std, dirty, clean (B, N, N) per pixel; metrics {name: (B,)}."""

    samples: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    dirty: torch.Tensor
    clean: torch.Tensor
    metrics: dict[str, torch.Tensor]


def observe(truth: torch.Tensor, op: FourierSamplingOperator, sigma_y: float,
            generators: Sequence[torch.Generator]) -> torch.Tensor:
    """y (B, M) = H(2x - 1) + σ_y z, z drawn per observation from its generator (on y's device)."""
    y = op.H(to_model(truth).to(torch.float64))
    z = torch.stack([torch.randn(y.shape[1], generator=g, dtype=y.dtype, device=g.device) for g in generators])
    return y + sigma_y * z.to(y.device)


def baselines(y: torch.Tensor, op: FourierSamplingOperator, sigma_y: float,
              clean: CleanConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(dirty, CLEAN restored) images (B, N, N), both in flux per pixel (image space)."""
    dirty = dirty_image(image_space_measurements(y, op), op)
    threshold = clean.threshold_sigmas * dirty_noise_std(op, sigma_y / 2)  # image-space noise is σ_y / 2
    result = hogbom_clean(dirty, dirty_beam(op), gain=clean.gain, threshold=threshold, max_iter=clean.max_iter)
    return dirty / result.beam.area_pixels, result.restored_per_pixel


def reconstruct_batch(denoiser: Denoiser, schedule: Schedule, op: FourierSamplingOperator, truth: torch.Tensor, *,
                      sigma_y: float, ddrm: DDRMConfig, noise_generators: Sequence[torch.Generator],
                      sample_generators: Sequence[torch.Generator], clean: CleanConfig = CleanConfig()) -> BatchResult:
    """Observe truths (B, N, N) in [0, 1], reconstruct (module docstring); metrics include ``t_sampling``
    (seconds of DDRM for the batch, shared equally) and the baselines' ``dirty_*`` and ``clean_*``."""
    if truth.dim() != 3 or truth.shape[-2:] != (op.N, op.N):
        raise ValueError(f"truth must be (B, {op.N}, {op.N}), got {tuple(truth.shape)}")
    if not torch.isfinite(truth).all():
        raise ValueError("truth images contain NaN or inf")
    y = observe(truth, op, sigma_y, noise_generators)
    t0 = time.perf_counter()
    x = ddrm_sample(denoiser, y.to(torch.float32), op, schedule, sample_generators, sigma_y=sigma_y, K=ddrm.K,
                    S=ddrm.samples, eta=ddrm.eta, eta_b=ddrm.eta_b)
    t_sampling = (time.perf_counter() - t0) / truth.shape[0]
    samples = to_image(x).clamp(0, 1)
    truth = truth.to(samples)
    out = {k: v for k, v in metrics.all_metrics(samples, truth).items() if k in DDRM_METRICS}
    out["t_sampling"] = torch.full_like(out["mse"], t_sampling)
    dirty, restored = baselines(y, op, sigma_y, clean)
    for name, image in (("dirty", dirty), ("clean", restored)):
        m = metrics.all_metrics(image[:, None].to(samples), truth)
        out.update({f"{name}_{k}": m[k] for k in BASELINE_METRICS})
    std = samples.std(dim=1) if samples.shape[1] > 1 else torch.zeros_like(samples[:, 0])
    return BatchResult(samples, samples.mean(dim=1), std, dirty.to(samples), restored.to(samples), out)

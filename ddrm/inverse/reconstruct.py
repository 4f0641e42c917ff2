"""Reconstruction from measurements alone: y in, posterior samples, mean and std out. No truth.

For model-space measurements y (B, P) of y = H x + z, z ~ N(0, σ_y² I), a diffusion prior
(a denoiser D(x_t, t) -> x̂_0 carrying its schedule) and a sampler config (:mod:`ddrm.inverse.samplers`):

    x̂_s = clip((sampler(y) + 1) / 2, 0, 1),  s = 1..S       (image space, docs/design.md §1; ``clip=False``
                                                              keeps negative values, and so the total flux)
    μ̂ = mean_s x̂_s,   σ̂ = std_s x̂_s (unbiased; 0 when S = 1)
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import torch

from ddrm.diffusion.ddpm import Denoiser, StepCallback
from ddrm.inverse.operators.base import SVDOperator
from ddrm.inverse.samplers import SamplerConfig, run_sampler
from ddrm.inverse.units import to_image


@dataclass(frozen=True)
class Posterior:
    """samples (B, S, N, N), mean and std (B, N, N), all image space; seconds of sampling per observation;
    denoiser evaluations per sample."""

    samples: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    seconds: float
    nfe: float = float("nan")


def summarise(samples: torch.Tensor, seconds: float = float("nan"), nfe: float = float("nan")) -> Posterior:
    """Posterior of image-space samples (B, S, N, N)."""
    std = samples.std(dim=1) if samples.shape[1] > 1 else torch.zeros_like(samples[:, 0])
    return Posterior(samples, samples.mean(dim=1), std, seconds, nfe)


def reconstruct(prior: Denoiser, y: torch.Tensor, op: SVDOperator, sigma_y: Union[float, torch.Tensor],
                sampler: SamplerConfig, generators: Sequence[torch.Generator], *, K: int, S: int,
                callback: Optional[StepCallback] = None, clip: bool = True) -> Posterior:
    """S posterior samples per observation of y (B, P) with ``sampler`` (module docstring)."""
    t0 = time.perf_counter()
    x = to_image(run_sampler(prior, y, op, sigma_y, sampler, generators, K=K, S=S, callback=callback))
    if x.is_cuda:  # the seconds are the sampling's, not the kernel launches'
        torch.cuda.synchronize(x.device)
    return summarise(x.clamp(0, 1) if clip else x, (time.perf_counter() - t0) / y.shape[0], sampler.nfe(K))

"""Simulated observations, end to end, composed from separate pure steps (docs/design.md §1, §5-7):

    simulate:     y = H (2x - 1) + σ_y z          (truth x (B, N, N) in [0, 1]; z per observation)
    reconstruct:  posterior of y with each sampler (:func:`ddrm.inverse.reconstruct.reconstruct`; no truth)
    baselines:    dirty and CLEAN images from y and H (:func:`ddrm.radio.baselines.baselines`; no truth)
    score:        metrics of every method against the truth

Metric names are ``<method>_<metric>``: the sampler's ``name`` (e.g. ``ddrm_psnr``) or a baseline's
(``dirty_psnr``, ``clean_psnr``). :func:`metric_columns` lists them for the samplers that run, so
stores and reports follow whatever samplers a survey uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

import ddrm.inverse.metrics as metrics
from ddrm.diffusion.ddpm import Denoiser
from ddrm.inverse.operators import FourierSamplingOperator
from ddrm.inverse.reconstruct import Posterior, reconstruct
from ddrm.inverse.samplers import SamplerConfig, make_generators
from ddrm.inverse.units import to_model
from ddrm.radio.baselines import BASELINES, CleanConfig, baselines
from ddrm.radio.simulate import add_noise
from ddrm.seeding import derive_seed

SAMPLER_METRICS = ("mse", "mse_mean", "psnr", "psnr_mean", "snr", "sre", "cov68", "cov95", "cov68_src", "cov95_src",
                   "t_sampling", "nfe")
BASELINE_METRICS = ("mse", "psnr", "snr")


def metric_columns(sampler_names: Sequence[str], baseline_names: Sequence[str] = BASELINES) -> tuple[str, ...]:
    """Every metric column of a survey running these samplers, then the baselines' (``baselines.baseline_names``)."""
    return tuple(f"{n}_{m}" for n in sampler_names for m in SAMPLER_METRICS) + \
        tuple(f"{b}_{m}" for b in baseline_names for m in BASELINE_METRICS)


def simulate(truth: torch.Tensor, op: FourierSamplingOperator, sigma_y: float,
             generators: Sequence[torch.Generator]) -> torch.Tensor:
    """y (B, M) float64 = H(2x - 1) + σ_y z for truths x (B, N, N) in [0, 1]; z[b] from generators[b]."""
    if truth.dim() != 3 or truth.shape[-2:] != (op.N, op.N):
        raise ValueError(f"truth must be (B, {op.N}, {op.N}), got {tuple(truth.shape)}")
    if not torch.isfinite(truth).all():
        raise ValueError("truth images contain NaN or inf")
    return add_noise(op.H(to_model(truth).to(torch.float64)), generators, sigma_y=sigma_y)[0]


def score(posterior: Posterior, truth: torch.Tensor, name: str) -> dict[str, torch.Tensor]:
    """``<name>_<metric>`` (B,) of a posterior against truths (B, N, N) in [0, 1]."""
    truth = truth.to(posterior.samples)
    m = metrics.all_metrics(posterior.samples, truth)
    m["psnr_mean"] = metrics.psnr_from_mse(m["mse_mean"])
    m["t_sampling"] = torch.full_like(m["mse"], posterior.seconds)
    m["nfe"] = torch.full_like(m["mse"], posterior.nfe)
    return {f"{name}_{k}": m[k] for k in SAMPLER_METRICS}


def score_image(image: torch.Tensor, truth: torch.Tensor, name: str) -> dict[str, torch.Tensor]:
    """``<name>_<metric>`` (B,) of one image per observation (B, N, N) against the truths."""
    m = metrics.all_metrics(image[:, None].to(truth.dtype), truth)
    return {f"{name}_{k}": m[k] for k in BASELINE_METRICS}


@dataclass(frozen=True)
class BatchResult:
    """y (B, M); posteriors by sampler name; baseline images (B, N, N) by name; metrics {column: (B,)}."""

    y: torch.Tensor
    posteriors: dict[str, Posterior]
    images: dict[str, torch.Tensor]
    metrics: dict[str, torch.Tensor]


def simulate_and_score(prior: Denoiser, truth: torch.Tensor, op: FourierSamplingOperator, sigma_y: float,
                       samplers: Sequence[SamplerConfig], *, K: int, S: int,
                       noise_generators: Sequence[torch.Generator],
                       sample_generators: dict[str, Sequence[torch.Generator]],
                       clean: CleanConfig = CleanConfig()) -> BatchResult:
    """simulate → reconstruct with every sampler → baselines → score (module docstring); the truth (B, N, N)
    takes the place of y in the calling convention."""
    y = simulate(truth, op, sigma_y, noise_generators)
    posteriors = {s.name: reconstruct(prior, y.to(torch.float32), op, sigma_y, s, sample_generators[s.name], K=K, S=S)
                  for s in samplers}
    images = baselines(y, op, sigma_y, clean)
    truth = truth.to(torch.float32)
    out: dict[str, torch.Tensor] = {}
    for name, posterior in posteriors.items():
        out.update(score(posterior, truth, name))
    for name, image in images.items():
        out.update(score_image(image.to(truth), truth, name))
    return BatchResult(y, posteriors, {k: v.to(truth) for k, v in images.items()}, out)


@dataclass(frozen=True)
class StackPosterior:
    """y (n, M) of each truth; posterior samples (n, S, N, N) in image space ([0, 1] unless unclipped) on the
    CPU in float64; sampling seconds per observation (the device synchronised)."""

    y: torch.Tensor
    samples: torch.Tensor
    seconds: float

    @property
    def mean(self) -> torch.Tensor:
        return self.samples.mean(1)


def stack_seeds(seed: int, n: int) -> tuple[list[int], list[int]]:
    """The one seed rule of an image stack (``ddrm.seeding``): observation i's noise from (seed, "noise", i), its
    samples from (seed, "samples", i), so the noise does not depend on the batch size, nor the samples on the
    noise."""
    return [derive_seed(seed, "noise", i) for i in range(n)], [derive_seed(seed, "samples", i) for i in range(n)]


def posterior_of_stack(prior: Denoiser, truth: torch.Tensor, op: FourierSamplingOperator, sigma_y: float,
                       sampler: SamplerConfig, *, K: int, S: int, batch: int = 1, seed: int = 0,
                       clip: bool = True, device: torch.device = torch.device("cpu")) -> StackPosterior:
    """simulate → reconstruct for a stack of truths (n, N, N) in [0, 1], ``batch`` observations per sampler call,
    with ``stack_seeds``: y = H(2x - 1) + σ_y z, then S samples of each with ``sampler`` on ``device``."""
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    noise_seeds, sample_seeds = stack_seeds(seed, len(truth))
    y = simulate(truth.double().cpu(), op, sigma_y, make_generators(noise_seeds))
    out, seconds = [], 0.0
    for b in range(0, len(truth), batch):
        gens = make_generators(sample_seeds[b:b + batch], device)
        post = reconstruct(prior, y[b:b + batch].float().to(device), op, sigma_y, sampler, gens, K=K, S=S, clip=clip)
        seconds += post.seconds * len(gens)
        out.append(post.samples.cpu().double())
    return StackPosterior(y, torch.cat(out), seconds / max(len(truth), 1))

"""Coverage of posterior intervals and their conformal recalibration (docs/design.md §9). Pure.

With S samples per observation, μ̂ and σ̂ (unbiased) per pixel, the raw central ``level`` interval is
μ̂ ± k σ̂ with k = ``metrics.interval_halfwidth_factor(level, S)`` (exact for Gaussian marginals at any S).
A trained prior is never exact, so a split-conformal scale c is fitted on *validation* observations:
with scores r = |x - μ̂| / σ̂ over their source pixels, q = the ⌈(n+1)·level⌉-th smallest of the n scores,
c = q / k; on new observations μ̂ ± c k σ̂ then covers ``level`` of source pixels (exchangeability).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch

from ddrm.diffusion.ddpm import Denoiser
from ddrm.diffusion.schedule import Schedule
from ddrm.inverse.metrics import interval_coverage, interval_halfwidth_factor, source_mask

STD_FLOOR = 1e-8
RELIABILITY_LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.68, 0.8, 0.9, 0.95)  # a reliability diagram's points


def scores(mean: torch.Tensor, std: torch.Tensor, truth: torch.Tensor,
           mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """|x - μ̂| / max(σ̂, 1e-8) over the pixels of ``mask`` (default: source pixels), flattened (n,).
    mean, std, truth: (B, N, N)."""
    if not mean.shape == std.shape == truth.shape or mean.dim() != 3:
        raise ValueError(f"need mean, std, truth (B, N, N), got {tuple(mean.shape)}, {tuple(std.shape)}, "
                         f"{tuple(truth.shape)}")
    mask = source_mask(truth) if mask is None else mask
    return ((truth - mean).abs() / std.clamp_min(STD_FLOOR))[mask]


def conformal_scale(val_scores: torch.Tensor, level: float, S: int) -> float:
    """c such that μ̂ ± c k σ̂ covers ``level`` of new pixels, from validation scores (n,) (n >= 1)."""
    n = int(val_scores.numel())
    if n < 1 or not 0 < level < 1:
        raise ValueError(f"need at least one validation score and 0 < level < 1, got {n}, {level}")
    rank = min(math.ceil((n + 1) * level), n)  # the finite-sample conformal quantile (capped at the largest)
    q = float(val_scores.double().sort().values[rank - 1])
    return q / interval_halfwidth_factor(level, S)


def covered(mean: torch.Tensor, std: torch.Tensor, truth: torch.Tensor, level: float, S: int,
            scale: float = 1.0, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Per observation (B,): the fraction of ``mask`` pixels (default: source pixels; NaN if none) inside
    μ̂ ± scale · k σ̂ (``metrics.interval_coverage``)."""
    return interval_coverage(mean, std, truth, level, S, scale, source_mask(truth) if mask is None else mask)


def reliability(mean: torch.Tensor, std: torch.Tensor, truth: torch.Tensor, S: int, levels: Sequence[float],
                scales: Optional[Sequence[float]] = None) -> list[float]:
    """Observed source-pixel coverage at each expected ``level`` over all observations (a reliability
    diagram's points); ``scales`` per level for recalibrated intervals."""
    mask = source_mask(truth)
    out = []
    for i, level in enumerate(levels):
        scale = 1.0 if scales is None else scales[i]
        inside = (truth - mean).abs() <= scale * interval_halfwidth_factor(level, S) * std
        out.append(float(inside[mask].double().mean()))
    return out


def recalibrate(mean: torch.Tensor, std: torch.Tensor, truth: torch.Tensor, S: int,
                validation: Optional[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = None,
                levels: Sequence[float] = RELIABILITY_LEVELS) -> dict:
    """The one recalibration of test posteriors (mean, std, truth, each (B, N, N)) by validation ones:

        c_level = conformal_scale(scores(validation), level, S),   covered with μ̂ ± c t √(1 + 1/S) σ̂

    -> scale68/scale95, cov68_src_cal/cov95_src_cal (test source-pixel coverage, mean over observations) and
    curve_cal (the recalibrated reliability points at ``levels``); all NaN/None without validation data."""
    if validation is None or len(validation[0]) == 0:
        nan = float("nan")
        return {"scale68": nan, "scale95": nan, "cov68_src_cal": nan, "cov95_src_cal": nan, "curve_cal": None}
    val_scores = scores(*validation)
    scale = {lv: conformal_scale(val_scores, lv, S) for lv in (0.68, 0.95)}
    return {"scale68": scale[0.68], "scale95": scale[0.95],
            "cov68_src_cal": float(covered(mean, std, truth, 0.68, S, scale[0.68]).nanmean()),
            "cov95_src_cal": float(covered(mean, std, truth, 0.95, S, scale[0.95]).nanmean()),
            "curve_cal": reliability(mean, std, truth, S, levels, [conformal_scale(val_scores, lv, S) for lv in levels])}


def tarp_coverage(samples: torch.Tensor, truth: torch.Tensor, seed: int = 0) -> tuple[list[float], list[float], float]:
    """TARP (Lemos, Coogan et al. 2023, PyPI ``tarp``) over observations: samples (B, S, N, N), truths
    (B, N, N) -> (expected coverage, credibility levels, max |ecp - α|); a calibrated posterior has
    ecp = α. References are drawn uniformly in each pixel's range over the samples, which depends on the
    data alone: tarp's own ``norm`` scales by the truths' range, which breaks the truth's exchangeability
    with the samples and gives max |ecp - α| ≈ 0.65 even for exact Gaussian samples at 150×150."""
    import numpy as np
    from tarp import get_tarp_coverage

    B = samples.shape[0]
    if B < 2 or samples.shape[1] < 2:
        raise ValueError(f"TARP needs at least 2 observations and 2 samples, got {tuple(samples.shape)}")
    theta = truth.reshape(B, -1).double().numpy()
    draws = samples.reshape(B, samples.shape[1], -1).transpose(0, 1).double().numpy()  # (S, B, D)
    low, high = draws.min(axis=(0, 1)), draws.max(axis=(0, 1))
    references = np.random.default_rng(seed).uniform(size=(B, draws.shape[-1])) * (high - low) + low
    ecp, alpha = get_tarp_coverage(draws, theta, references=references, metric="euclidean", num_alpha_bins=B,
                                   norm=False)
    return [float(v) for v in ecp], [float(v) for v in alpha], float(np.abs(np.asarray(ecp) - np.asarray(alpha)).max())


@torch.no_grad()
def denoiser_calibration(denoiser: Denoiser, schedule: Schedule, x0: torch.Tensor, rho: float, probes: int,
                         generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Is a denoiser as confident as its errors? Tweedie's second-order identity, for u = x₀ + ρ ε and the
    exact D(u) = E[x₀ | u]: Cov[x₀ | u] = ρ² ∂D/∂u, so over data and noise, per pixel,

        E[(x₀ - D(u))²] = ρ² E[diag ∂D/∂u].

    x0 (B, 1, N, N) in model units -> per pixel (squared error, ρ² diag J) (B, 1, N, N) and ρ, rounded to
    the nearest σ_t of the schedule (the network sees √ᾱ_t u); average both over the pixels of interest.
    diag J by Hutchinson with ``probes`` Rademacher v and central differences: v ⊙ (D(u+hv) - D(u-hv))/2h.
    A ratio mean error / mean ρ² diag J above 1 is a denoiser more confident than its errors. Over pixels
    chosen by x₀ (source pixels) the identity holds only approximately."""
    t = schedule.nearest_timestep(rho)
    sig, ab = float(schedule.sigmas[t]), float(schedule.alpha_bar[t])
    ts = torch.full((x0.shape[0],), t, dtype=torch.long, device=x0.device)

    def D(u: torch.Tensor) -> torch.Tensor:
        return denoiser(ab ** 0.5 * u, ts)

    u = x0 + sig * torch.randn(x0.shape, generator=generator, dtype=x0.dtype).to(x0.device)
    err, h, diag = (D(u) - x0) ** 2, 1e-3 * sig, torch.zeros_like(x0)
    for _ in range(probes):
        v = (torch.randint(0, 2, x0.shape, generator=generator) * 2 - 1).to(x0)
        diag += v * (D(u + h * v) - D(u - h * v)) / (2 * h * probes)
    return err, sig ** 2 * diag, sig

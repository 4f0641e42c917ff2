"""From gridded visibilities to what the samplers and baselines take: the operator, measurements
and noise levels (issue 13). Pure: tensors in, tensors out.

With X the unitary DFT of the sky in Jy/pixel (``WeightedGrid.X``), cell k's mean has complex noise
of std 1/(N √W_k) per real coordinate (W_k the summed data weights). The operator's singular values
come from the imaging weights I_k, s_k = √(I_k / mean I), and the measurements are

    y_jy = s ⊙ x̄,   x̄ = the real Fourier coordinates of X (√2 Re, √2 Im per conjugate pair),

with noise std σ_k = s_k √2 / (N √W_k) per coordinate: the same σ for every coordinate under
natural weighting (I = W); otherwise ``sigma_weights`` is their RMS. Model space, for a flux scale
F (Jy/pixel mapped to image value 1): y_model = 2 y_jy / F - H 1, σ_model = 2 σ / F.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..operators.fourier import FourierSamplingOperator
from .gridding import WeightedGrid


@dataclass(frozen=True, eq=False)
class GriddedObservation:
    """op; y_jy (M,) in Jy/pixel units; σ per coordinate from the data weights, and the same scaled by
    the in-cell scatter (``sigma_scatter``; NaN if no cell holds two samples)."""

    op: FourierSamplingOperator
    y_jy: torch.Tensor
    sigma_weights: float
    sigma_scatter: float
    grid: WeightedGrid


def observation_from_grid(grid: WeightedGrid) -> GriddedObservation:
    op = FourierSamplingOperator(grid.imaging_weight)
    coords = op.basis.coordinates(grid.X)
    s = op.singulars.to(torch.float64)
    y = op.gather(coords) * s
    N = op.N
    W = grid.data_weight.flatten()[op.measured]
    sigma_k = s * math.sqrt(2) / (N * W.sqrt())
    sigma = float(sigma_k.pow(2).mean().sqrt())
    scatter = sigma * math.sqrt(grid.scatter_chi2) if math.isfinite(grid.scatter_chi2) else float("nan")
    return GriddedObservation(op, y, sigma, scatter, grid)


def to_model_space(y_jy: torch.Tensor, op: FourierSamplingOperator, flux_scale: float) -> torch.Tensor:
    """y_model = 2 y_jy / F - H 1 (H 1 is non-zero only at DC, almost never measured)."""
    ones = torch.ones(op.N, op.N, dtype=y_jy.dtype)
    return 2 * y_jy / flux_scale - op.H(ones)


@dataclass(frozen=True, eq=False)
class ImagingResult:
    """One observation imaged. Images (N, N): ``mean``, ``std`` (posterior, Jy/pixel), ``dirty`` and
    ``clean`` (Jy/beam), ``clean_per_pixel`` (Jy/pixel). ``flux_scale`` F maps image value 1 to Jy/pixel
    (``flux_scale_initial`` before the one refinement); σ_y in model space; χ² of the posterior mean
    per measured coordinate; total fluxes (Jy) of the posterior mean and of the CLEAN components."""

    mean: torch.Tensor
    std: torch.Tensor
    dirty: torch.Tensor
    clean: torch.Tensor
    clean_per_pixel: torch.Tensor
    beam: "CleanBeam"
    flux_scale: float
    flux_scale_initial: float
    sigma_y: float
    sigma_jy: float
    chi2: float
    total_flux: float
    total_flux_clean: float
    seconds: float


def image_observation(obs: GriddedObservation, denoiser, schedule, sampler, generators, *, K: int, S: int,
                      noise: str = "weights", clean: "CleanConfig" = None) -> ImagingResult:
    """Dirty and CLEAN images from y, then the posterior with the flux scale fixed by the data:

    F₀ = the peak CLEAN component (Jy/pixel; an overestimate, so the prior's [0, 1] range never clips
    the source), one reconstruction, then F = F₀ · max(μ̂₀) and the final reconstruction at F. The
    unmeasured DC (total flux) is fixed by the prior's empty, non-negative sky around the source.
    ``noise``: "weights" (σ from the data weights) or "scatter" (rescaled by the in-cell scatter)."""
    import time

    from ..baselines import CleanConfig, dirty_beam, dirty_image, dirty_noise_std, hogbom_clean
    from ..reconstruct import reconstruct

    clean = clean or CleanConfig()
    if noise not in ("weights", "scatter"):
        raise ValueError(f"noise must be 'weights' or 'scatter', got {noise!r}")
    sigma = obs.sigma_weights if noise == "weights" or not math.isfinite(obs.sigma_scatter) else obs.sigma_scatter
    op, y = obs.op, obs.y_jy[None]
    dirty = dirty_image(y, op)
    result = hogbom_clean(dirty, dirty_beam(op), gain=clean.gain, max_iter=clean.max_iter,
                          threshold=clean.threshold_sigmas * dirty_noise_std(op, sigma))
    F0 = float(result.model.max())
    if not F0 > 0:
        raise ValueError("CLEAN found no positive flux: cannot set the flux scale")
    t0 = time.perf_counter()

    def run(F: float, gens):
        return reconstruct(to_model_space(y, op, F).float(), op, 2 * sigma / F, denoiser, schedule, sampler, gens,
                           K=K, S=S)

    first = run(F0, generators)
    F = F0 * float(first.mean.max())
    post = run(F, [torch.Generator(device=g.device).manual_seed(g.initial_seed() + 1) for g in generators])
    mean_model = 2 * post.mean.double() - 1
    chi2 = float(((op.H(mean_model) - to_model_space(y, op, F)) / (2 * sigma / F)).pow(2).mean())
    return ImagingResult(post.mean[0].double() * F, post.std[0].double() * F, dirty[0], result.restored[0],
                         result.restored_per_pixel[0], result.beam, F, F0, 2 * sigma / F, sigma, chi2,
                         float(post.mean.double().sum() * F), float(result.model.sum()), time.perf_counter() - t0)

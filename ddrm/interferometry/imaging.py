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
from dataclasses import dataclass, replace
from typing import Optional

import numpy as np
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


def with_total_flux(grid: WeightedGrid, flux_jy: float) -> WeightedGrid:
    """The grid with its zero-spacing cell set to a total flux (Jy) when no baseline measured it:
    X[0, 0] = flux / N (the unitary DFT's DC of a sky of that total), with the largest cell weight, so
    the prior cannot drift the sky's total. A measured DC is kept as it is."""
    if float(grid.data_weight[0, 0]) > 0:
        return grid
    N = grid.X.shape[-1]
    X, W, imaging = grid.X.clone(), grid.data_weight.clone(), grid.imaging_weight.clone()
    X[0, 0], W[0, 0], imaging[0, 0] = flux_jy / N, W.max(), imaging.max()
    return replace(grid, X=X, data_weight=W, imaging_weight=imaging)


def to_model_space(y_jy: torch.Tensor, op: FourierSamplingOperator, flux_scale: float) -> torch.Tensor:
    """y_model = 2 y_jy / F - H 1 (H 1 is non-zero only at DC, almost never measured)."""
    ones = torch.ones(op.N, op.N, dtype=y_jy.dtype)
    return 2 * y_jy / flux_scale - op.H(ones)


@dataclass(frozen=True, eq=False)
class ImagingResult:
    """One observation imaged. Images (N, N): ``mean``, ``std`` (posterior, Jy/pixel), ``dirty`` and
    ``clean`` (Jy/beam), ``clean_per_pixel`` (Jy/pixel), ``clean_model`` (CLEAN components, Jy/pixel);
    ``samples`` (S, N, N) Jy/pixel. ``flux_scale`` F maps image value 1 to Jy/pixel (``flux_scale_initial``
    before the one refinement); σ_y in model space; ``chi2_gridded``: χ² of the posterior mean per measured
    coordinate of the nearest-cell grid (not the visibilities: see ``nufft``); total fluxes (Jy) of the
    posterior mean and of the CLEAN components; ``likelihood``: "exact" or "gridded"."""

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
    chi2_gridded: float
    total_flux: float
    total_flux_clean: float
    seconds: float
    samples: torch.Tensor
    clean_model: torch.Tensor
    likelihood: str = "gridded"


def image_observation(obs: GriddedObservation, denoiser, schedule, sampler, generators, *, K: int, S: int,
                      noise: str = "weights", clean: "CleanConfig" = None,
                      dirty: Optional[tuple[torch.Tensor, torch.Tensor]] = None,
                      visibilities: Optional[tuple] = None, exact=None) -> ImagingResult:
    """Dirty and CLEAN images from y, then the posterior with the flux scale fixed by the data:

    F₀ = the peak CLEAN component (Jy/pixel; an overestimate, so the prior's [0, 1] range never clips
    the source), one reconstruction, then F = F₀ · max(μ̂₀) and the final reconstruction at F. What
    fixes the total flux: the zero-spacing cell if a baseline measured it (EHT's intra-site pairs),
    else the CLEAN model's total flux as that cell's measurement (``with_total_flux``); a prior
    trained on other fields otherwise drifts the empty sky, and with it the total.
    ``noise``: "weights" (σ from the data weights) or "scatter" (rescaled by the in-cell scatter).
    ``dirty``: (dirty image Jy/beam, PSF peak 1 at (0, 0)), each (N, N), from the visibilities themselves
    (``dirty.nufft_dirty``/``nufft_psf``) for the dirty and CLEAN products; default Hᵀy on the operator's grid.
    ``visibilities`` (uv (n, 2) wavelengths, values (n,) Jy, data weights (n,)) and ``exact`` (an
    ``ExactRefineConfig``): the sampler's draws, on the grid, are then refined under the exact likelihood of
    the visibilities at their own (u, v) (``ddrm.exact_gibbs``), with the same total-flux anchor."""
    import time

    from ..baselines import CleanConfig, dirty_beam, dirty_image, dirty_noise_std, hogbom_clean
    from ..reconstruct import reconstruct

    clean = clean or CleanConfig()
    if noise not in ("weights", "scatter"):
        raise ValueError(f"noise must be 'weights' or 'scatter', got {noise!r}")
    sigma = obs.sigma_weights if noise == "weights" or not math.isfinite(obs.sigma_scatter) else obs.sigma_scatter
    dirty, psf = (dirty[0][None], dirty[1]) if dirty is not None else (dirty_image(obs.y_jy[None], obs.op),
                                                                          dirty_beam(obs.op))
    result = hogbom_clean(dirty, psf, gain=clean.gain, max_iter=clean.max_iter,
                          threshold=clean.threshold_sigmas * dirty_noise_std(obs.op, sigma))
    F0 = float(result.model.max())
    if not F0 > 0:
        raise ValueError("CLEAN found no positive flux: cannot set the flux scale")
    anchored = observation_from_grid(with_total_flux(obs.grid, float(result.model.sum())))
    op, y = anchored.op, anchored.y_jy[None]
    t0 = time.perf_counter()

    def run(F: float, gens):
        return reconstruct(to_model_space(y, op, F).float(), op, 2 * sigma / F, denoiser, schedule, sampler, gens,
                           K=K, S=S, clip=False)  # a real sky's noise may be negative; clipping would add flux

    first = run(F0, generators)
    F = F0 * float(first.mean.max())
    post = run(F, [torch.Generator(device=g.device).manual_seed(g.initial_seed() + 1) for g in generators])
    mean_model = 2 * post.mean.double() - 1
    chi2 = float(((op.H(mean_model) - to_model_space(y, op, F)) / (2 * sigma / F)).pow(2).mean())
    samples, mode = post.samples[0].double(), "gridded"
    if exact is not None and visibilities is not None:
        samples = exact_samples(samples, obs, visibilities, sigma / obs.sigma_weights, float(result.model.sum()), F,
                                 denoiser, schedule, exact, generators)
        mode = "exact"
    mean = samples.mean(0)
    std = samples.std(0) if len(samples) > 1 else torch.zeros_like(mean)
    return ImagingResult(mean=mean * F, std=std * F, dirty=dirty[0], clean=result.restored[0],
                         clean_per_pixel=result.restored_per_pixel[0], beam=result.beam, flux_scale=F,
                         flux_scale_initial=F0, sigma_y=2 * sigma / F, sigma_jy=sigma, chi2_gridded=chi2,
                         total_flux=float(mean.sum() * F), total_flux_clean=float(result.model.sum()),
                         seconds=time.perf_counter() - t0, samples=samples * F, clean_model=result.model[0].double(),
                         likelihood=mode)


def exact_samples(samples: torch.Tensor, obs: GriddedObservation, visibilities: tuple, noise_scale: float,
                   total_flux: float, F: float, denoiser, schedule, exact, generators) -> torch.Tensor:
    """Image-space samples (S, N, N) refined under the exact likelihood at flux scale F. Without a measured
    zero spacing, the total flux enters as a visibility at (0, 0) with the largest cell weight (as on the grid)."""
    from ..exact_gibbs import exact_refine
    from ..likelihood import VisibilityLikelihood

    uv, values, weight = (np.asarray(v) for v in visibilities)
    weight = weight / noise_scale ** 2
    if not float(obs.grid.data_weight[0, 0]) > 0:
        uv = np.concatenate([uv, np.zeros((1, 2))])
        values = np.concatenate([values, [total_flux]])
        weight = np.concatenate([weight, [float(obs.grid.data_weight.max())]])
    N = samples.shape[-1]
    like = VisibilityLikelihood.build(uv, values, weight, N, obs.grid.pixel_scale_arcsec, F)
    gens = [torch.Generator(device=g.device).manual_seed(g.initial_seed() + 2) for g in generators]
    x = exact_refine(denoiser, (2 * samples - 1)[None], like, schedule, gens, exact)
    return (x[0].double() + 1) / 2

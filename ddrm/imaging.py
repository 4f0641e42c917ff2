"""Imaging visibilities, self-calibrated or not: samples at their own (u, v) in, the posterior out.

    prepare    the nearest-cell grid (the fast operator of DDRM), and the dirty image and PSF of the
               visibilities themselves (exact NUFFT, the grid's weighting)
    posterior  ``interferometry.imaging.image_observation``: DDRM on the grid, then split-Gibbs sweeps under
               the exact likelihood of the visibilities (``exact_gibbs``)
    selfcal    ``selfcal``: CLEAN rounds, the posterior of the corrected data, then its exact chain again with
               the gains as a block (``selfcal_chain``)

``ImagingResult`` is what one observation imaged gives. Pure: arrays and tensors in, errors are ValueError.
The stage's I/O is ``tasks.image``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Optional, Sequence

import numpy as np
import torch

from .ddpm import Denoiser
from .baselines import CleanBeam, CleanConfig, dirty_beam, dirty_image, dirty_noise_std, hogbom_clean
from .exact_gibbs import ExactRefineConfig, exact_refine
from .interferometry.dirty import nufft_dirty, nufft_psf
from .interferometry.fit import on_field
from .interferometry.gridding import grid_weighted, visibility_imaging_weights, zero_spacing_amplitudes
from .interferometry.imaging import GriddedObservation, observation_from_grid, to_model_space, with_total_flux
from .likelihood import VisibilityLikelihood
from .reconstruct import reconstruct
from .samplers import SamplerConfig
from .selfcal import CalData, SelfCalConfig, SelfCalRecord, iterate, point_start
from .selfcal_chain import GainBlock, calibrating_refine

# What the code does to a product where no setting says so. Bump it with any change that alters an image, a
# gain table or a summary for the same settings: run keys hash it, so a rerun never reuses an older algorithm's
# products. 2: mean-amplitude gain normalisation, positive CLEAN models, a CLEAN stage's best round kept.
# 3: the pixel scale chosen by the closure fit over a ladder of fields (tasks.image_scale).
# 4: the ladder scored on held-out scans; the data term chosen from the phases' stability (closures or visibilities).
IMAGING_ALGORITHM = 4


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
    beam: CleanBeam
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


def image_observation(prior: Denoiser, obs: GriddedObservation, sampler: SamplerConfig,
                      generators: Sequence[torch.Generator], *, K: int, S: int,
                      noise: str = "weights", clean: Optional[CleanConfig] = None,
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
        return reconstruct(prior, to_model_space(y, op, F).float(), op, 2 * sigma / F, sampler, gens,
                           K=K, S=S, clip=False)  # a real sky's noise may be negative; clipping would add flux

    first = run(F0, generators)
    F = F0 * float(first.mean.max())
    post = run(F, chain_generators(generators, 1))
    mean_model = 2 * post.mean.double() - 1
    chi2 = float(((op.H(mean_model) - to_model_space(y, op, F)) / (2 * sigma / F)).pow(2).mean())
    samples, mode = post.samples[0].double(), "gridded"
    if exact is not None and visibilities is not None:
        samples = exact_samples(prior, samples, obs, visibilities, sigma / obs.sigma_weights,
                                float(result.model.sum()), F, exact, generators)
        mode = "exact"
    mean = samples.mean(0)
    std = samples.std(0) if len(samples) > 1 else torch.zeros_like(mean)
    return ImagingResult(mean=mean * F, std=std * F, dirty=dirty[0], clean=result.restored[0],
                         clean_per_pixel=result.restored_per_pixel[0], beam=result.beam, flux_scale=F,
                         flux_scale_initial=F0, sigma_y=2 * sigma / F, sigma_jy=sigma, chi2_gridded=chi2,
                         total_flux=float(mean.sum() * F), total_flux_clean=float(result.model.sum()),
                         seconds=time.perf_counter() - t0, samples=samples * F, clean_model=result.model[0].double(),
                         likelihood=mode)


def exact_likelihood(obs: GriddedObservation, visibilities: tuple, noise_scale: float, total_flux: float,
                     F: float) -> VisibilityLikelihood:
    """The exact likelihood at flux scale F of visibilities (uv (n, 2), values (n,) Jy, data weights (n,)),
    their σ scaled by ``noise_scale``. Without a measured zero spacing, the total flux enters as a visibility
    at (0, 0) with the largest cell weight (as on the grid)."""
    uv, values, weight = (np.asarray(v) for v in visibilities)
    weight = weight / noise_scale ** 2
    if not float(obs.grid.data_weight[0, 0]) > 0:
        uv = np.concatenate([uv, np.zeros((1, 2))])
        values = np.concatenate([values, [total_flux]])
        weight = np.concatenate([weight, [float(obs.grid.data_weight.max())]])
    return VisibilityLikelihood.build(uv, values, weight, obs.op.N, obs.grid.pixel_scale_arcsec, F)


def chain_generators(generators: Sequence[torch.Generator], offset: int) -> list[torch.Generator]:
    """Fresh generators seeded ``offset`` past the caller's (one stream per stage)."""
    return [torch.Generator(device=g.device).manual_seed(g.initial_seed() + offset) for g in generators]


def exact_samples(prior: Denoiser, samples: torch.Tensor, obs: GriddedObservation, visibilities: tuple,
                  noise_scale: float, total_flux: float, F: float, exact: ExactRefineConfig,
                  generators: Sequence[torch.Generator]) -> torch.Tensor:
    """Image-space samples (S, N, N) refined under the exact likelihood (``exact_likelihood``) at flux scale F."""
    like = exact_likelihood(obs, visibilities, noise_scale, total_flux, F)
    x = exact_refine(prior, (2 * samples - 1)[None], like, exact, chain_generators(generators, 2))
    return (x[0].double() + 1) / 2


@dataclass(frozen=True)
class ImagingSettings:
    """N×N at ``pixel_scale_arcsec``; the grid's weighting; S samples with K steps of ``sampler``; σ from the
    data "weights" or their "scatter"; CLEAN; ``exact`` None keeps the gridded posterior."""

    N: int
    pixel_scale_arcsec: float
    sampler: SamplerConfig
    K: int
    S: int
    weighting: str = "natural"
    robust: float = 0.0
    noise: str = "weights"
    clean: CleanConfig = CleanConfig()
    exact: Optional[ExactRefineConfig] = ExactRefineConfig()


@dataclass(frozen=True, eq=False)
class Prepared:
    """The grid's observation; dirty image (N, N) Jy/beam and PSF (2N, 2N) from the visibilities; their
    values (n,) with the zero spacing's phase set to 0, imaging weights (n,), and which samples an N×N image
    can model (n,) bool (``fit.on_field``: the likelihood's)."""

    obs: GriddedObservation
    dirty: torch.Tensor
    psf: torch.Tensor
    values: np.ndarray
    imaging_weights: np.ndarray
    on: np.ndarray

    def likelihood_data(self, data: CalData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(uv, values, data weights) of the on-field samples."""
        return data.uv[self.on], self.values[self.on], data.weight[self.on]


@dataclass(frozen=True, eq=False)
class Imaged:
    """The result; the data as imaged (corrected by the gains, if any); the self-calibration's record
    (None without); CLEAN's components (N, N) Jy/pixel of the uncorrected data."""

    result: ImagingResult
    data: CalData
    prepared: Prepared
    selfcal: Optional[SelfCalRecord]
    clean_uncalibrated: torch.Tensor


def prepare(data: CalData, settings: ImagingSettings) -> Prepared:
    """Grid, dirty image and PSF of the data (module docstring); ValueError if nothing falls on the grid."""
    N, scale = settings.N, settings.pixel_scale_arcsec
    grid = grid_weighted(data.uv, data.vis, data.weight, N, scale, settings.weighting, settings.robust)
    if grid.n_on == 0:
        raise ValueError(f"no visibility falls on a {N}x{N} grid at {scale:.4g} arcsec/pixel")
    weights = visibility_imaging_weights(data.uv, data.weight, grid)
    values = zero_spacing_amplitudes(data.uv, data.vis, N, scale)
    return Prepared(observation_from_grid(grid), nufft_dirty(data.uv, values, weights, N, scale),
                    nufft_psf(data.uv, weights, N, scale), values, weights, on_field(data.uv, N, scale))


def clean_components(prep: Prepared, clean: CleanConfig, positive: bool = False) -> torch.Tensor:
    """Hogbom CLEAN's components (N, N) Jy/pixel of the prepared data, to ``threshold_sigmas`` × the noise;
    ``positive``: positive components only (a self-calibration model: a non-negative sky, as difmap's)."""
    threshold = clean.threshold_sigmas * dirty_noise_std(prep.obs.op, prep.obs.sigma_weights)
    return hogbom_clean(prep.dirty[None], prep.psf, gain=clean.gain, max_iter=clean.max_iter,
                        threshold=threshold, positive=positive).model[0].double()


def posterior(prior: Denoiser, prep: Prepared, data: CalData, settings: ImagingSettings,
              generators: Sequence[torch.Generator]) -> ImagingResult:
    """The posterior of prepared data (``image_observation``), exact unless ``settings.exact`` is None."""
    return image_observation(prior, prep.obs, settings.sampler, generators, K=settings.K, S=settings.S,
                             noise=settings.noise, clean=settings.clean, dirty=(prep.dirty, prep.psf),
                             visibilities=prep.likelihood_data(data), exact=settings.exact)


def chained(prior: Denoiser, r: ImagingResult, prep: Prepared, data: CalData, settings: ImagingSettings,
            record: SelfCalRecord, generators: Sequence[torch.Generator]) -> ImagingResult:
    """The result's samples refined under the exact likelihood (``settings.exact``, set) of the raw on-field
    ``data`` with the gains as a block of the chain (``selfcal_chain``), from ``record.solution``; the record
    ends with the final gains."""
    N, scale, F = settings.N, settings.pixel_scale_arcsec, r.flux_scale

    def like_of(d: CalData) -> VisibilityLikelihood:
        values = zero_spacing_amplitudes(d.uv, d.vis, N, scale)
        return exact_likelihood(prep.obs, (d.uv, values, d.weight), r.sigma_jy / prep.obs.sigma_weights,
                                r.total_flux_clean, F)

    block = GainBlock(data, like_of, record, settings.exact, scale, F, first_round=1,
                      generators=chain_generators(generators, 12))
    x = calibrating_refine(prior, (2 * r.samples / F - 1)[None], block, chain_generators(generators, 11))
    samples = (x[0].double() + 1) / 2 * F
    mean = samples.mean(0)
    std = samples.std(0) if len(samples) > 1 else torch.zeros_like(mean)
    return replace(r, samples=samples, mean=mean, std=std, total_flux=float(mean.sum()), likelihood="exact")


def image_visibilities(prior: Denoiser, data: CalData, settings: ImagingSettings,
                       generators: Sequence[torch.Generator], selfcal: Optional[SelfCalConfig] = None) -> Imaged:
    """prepare → (CLEAN self-calibration rounds) → posterior → (its chain again with the gain block) (module
    docstring). The gains are solved on the samples an N×N image can model, and applied to all."""
    prep = prepare(data, settings)
    clean_raw = clean_components(prep, settings.clean)
    if selfcal is None or selfcal.mode == "none":
        return Imaged(posterior(prior, prep, data, settings, generators), data, prep, None, clean_raw)
    record, scale, on = SelfCalRecord(selfcal), settings.pixel_scale_arcsec, prep.on
    modelled = data.subset(on)
    if selfcal.start == "point":
        point_start(modelled, settings.N, scale, record)
    iterate(modelled, lambda d: clean_components(prepare(d, settings), settings.clean, positive=True), scale, record,
            "clean", first_round=int(selfcal.start == "point"), rounds=selfcal.clean_rounds)
    calibrated = data.corrected(record.solution)
    prep = prepare(calibrated, settings)
    first = posterior(prior, prep, calibrated, settings, generators)
    if settings.exact is None:  # the gridded posterior: CLEAN rounds only
        return Imaged(first, calibrated, prep, record, clean_raw)
    record.converged = False
    r = chained(prior, first, prep, modelled, settings, record, generators)
    return Imaged(r, data.corrected(record.solution), prep, record, clean_raw)

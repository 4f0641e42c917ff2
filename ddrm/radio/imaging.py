"""Imaging visibilities, self-calibrated or not: samples at their own (u, v) in, the posterior out.

    prepare    the nearest-cell grid (the fast operator of DDRM), and the dirty image and PSF of the
               visibilities themselves (exact NUFFT, the grid's weighting)
    posterior  ``gridded_posterior``: DDRM on the grid, then ``exactly_refined``: split-Gibbs sweeps under
               the exact likelihood of the visibilities (``exact_gibbs``)
    selfcal    ``selfcal``: CLEAN rounds, the posterior of the corrected data, then its exact chain again with
               the gains as a block (``selfcal_chain``)

``ImagingResult`` is what one observation imaged gives. Pure: arrays and tensors in, errors are ValueError.
The stage's I/O is ``imager.file``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Optional, Sequence

import numpy as np
import torch

from ddrm.diffusion.ddpm import Denoiser
from ddrm.inverse.reconstruct import reconstruct
from ddrm.radio.baselines import CleanBeam, CleanConfig, dirty_beam, dirty_image, dirty_noise_std, hogbom_clean
from ddrm.radio.dirty import nufft_dirty, nufft_psf
from ddrm.radio.exact_gibbs import ExactRefineConfig, exact_refine
from ddrm.radio.fit import on_field
from ddrm.radio.imaging_config import ImagingConfig, SamplingConfig
from ddrm.radio.grid_problem import GriddedObservation, observation_from_grid, to_model_space, with_total_flux
from ddrm.radio.gridding import grid_weighted, visibility_imaging_weights, zero_spacing_amplitudes
from ddrm.radio.likelihood import VisibilityLikelihood
from ddrm.radio.selfcal import SelfCalTrace, iterate, point_start
from ddrm.radio.selfcal_chain import GainBlock, calibrating_refine
from ddrm.radio.visibilities import Visibilities
from ddrm.seeding import stage_generators

# What the code does to a product where no setting says so. Bump it with any change that alters an image, a
# gain table or a summary for the same settings: run keys hash it, so a rerun never reuses an older algorithm's
# products (the versions: docs/measurements.md).
IMAGING_ALGORITHM = 8


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


def gridded_posterior(prior: Denoiser, obs: GriddedObservation, sampling: SamplingConfig, clean: CleanConfig,
                      generators: Sequence[torch.Generator], *,
                      dirty: Optional[tuple[torch.Tensor, torch.Tensor]] = None) -> ImagingResult:
    """Dirty and CLEAN images from y, then the posterior on the nearest-cell grid with the flux scale fixed by
    the data:

    F₀ = the peak CLEAN component (Jy/pixel; an overestimate, so the prior's [0, 1] range never clips
    the source), one reconstruction, then F = F₀ · max(μ̂₀) and the final reconstruction at F. What
    fixes the total flux: the zero-spacing cell if a baseline measured it (EHT's intra-site pairs),
    else the CLEAN model's total flux as that cell's measurement (``with_total_flux``); a prior
    trained on other fields otherwise drifts the empty sky, and with it the total. σ from the data
    weights, or rescaled by the in-cell scatter (``sampling.noise``). ``dirty``: (dirty image Jy/beam, PSF
    peak 1 at (0, 0)), each (N, N), from the visibilities themselves (``dirty.nufft_dirty``/``nufft_psf``) for
    the dirty and CLEAN products; default Hᵀy on the operator's grid."""
    noise = sampling.noise
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
        return reconstruct(prior, to_model_space(y, op, F).float(), op, 2 * sigma / F, sampling.sampler, gens,
                           K=sampling.K, S=sampling.samples, clip=False)  # a real sky's noise may be negative

    first = run(F0, generators)
    F = F0 * float(first.mean.max())
    post = run(F, stage_generators(generators, "final posterior"))
    mean_model = 2 * post.mean.double() - 1
    chi2 = float(((op.H(mean_model) - to_model_space(y, op, F)) / (2 * sigma / F)).pow(2).mean())
    samples = post.samples[0].double()
    mean = samples.mean(0)
    std = samples.std(0) if len(samples) > 1 else torch.zeros_like(mean)
    return ImagingResult(mean=mean * F, std=std * F, dirty=dirty[0], clean=result.restored[0],
                         clean_per_pixel=result.restored_per_pixel[0], beam=result.beam, flux_scale=F,
                         flux_scale_initial=F0, sigma_y=2 * sigma / F, sigma_jy=sigma, chi2_gridded=chi2,
                         total_flux=float(mean.sum() * F), total_flux_clean=float(result.model.sum()),
                         seconds=time.perf_counter() - t0, samples=samples * F, clean_model=result.model[0].double())


def exactly_refined(prior: Denoiser, r: ImagingResult, obs: GriddedObservation, visibilities: Visibilities,
                    exact: ExactRefineConfig, generators: Sequence[torch.Generator]) -> ImagingResult:
    """The gridded posterior's samples refined under the exact likelihood of the visibilities at their own
    (u, v) (``exact_gibbs``), at its flux scale and with the same total-flux anchor."""
    t0, F = time.perf_counter(), r.flux_scale
    samples = exact_samples(prior, r.samples / F, obs, visibilities, r.sigma_jy / obs.sigma_weights,
                            r.total_flux_clean, F, exact, generators)
    mean = samples.mean(0)
    std = samples.std(0) if len(samples) > 1 else torch.zeros_like(mean)
    return replace(r, mean=mean * F, std=std * F, samples=samples * F, total_flux=float(mean.sum() * F),
                   likelihood="exact", seconds=r.seconds + time.perf_counter() - t0)


def exact_likelihood(obs: GriddedObservation, visibilities: Visibilities, noise_scale: float, total_flux: float,
                     F: float) -> VisibilityLikelihood:
    """The exact likelihood at flux scale F of the visibilities, their σ scaled by ``noise_scale``. Without a
    measured zero spacing, the total flux enters as a visibility at (0, 0) with the largest cell weight (as on
    the grid)."""
    uv, values, weight = visibilities.uv, visibilities.vis, visibilities.weight / noise_scale ** 2
    if not float(obs.grid.data_weight[0, 0]) > 0:
        uv = np.concatenate([uv, np.zeros((1, 2))])
        values = np.concatenate([values, [total_flux]])
        weight = np.concatenate([weight, [float(obs.grid.data_weight.max())]])
    return VisibilityLikelihood.build(uv, values, weight, obs.op.N, obs.grid.pixel_scale_arcsec, F)


def exact_samples(prior: Denoiser, samples: torch.Tensor, obs: GriddedObservation, visibilities: Visibilities,
                  noise_scale: float, total_flux: float, F: float, exact: ExactRefineConfig,
                  generators: Sequence[torch.Generator]) -> torch.Tensor:
    """Image-space samples (S, N, N) refined under the exact likelihood (``exact_likelihood``) at flux scale F."""
    like = exact_likelihood(obs, visibilities, noise_scale, total_flux, F)
    x = exact_refine(prior, (2 * samples - 1)[None], like, exact, stage_generators(generators, "exact chain"))
    return (x[0].double() + 1) / 2


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

    @property
    def on_imaging_weights(self) -> np.ndarray:
        return self.imaging_weights[self.on]

    def likelihood_data(self, data: Visibilities) -> Visibilities:
        """The on-field samples, with the zero spacing's phase set to 0."""
        return data.with_values(self.values).subset(self.on)


@dataclass(frozen=True, eq=False)
class Imaged:
    """The result; the data as imaged (corrected by the gains, if any); the self-calibration's trace
    (None without); CLEAN's components (N, N) Jy/pixel of the uncorrected data."""

    result: ImagingResult
    data: Visibilities
    prepared: Prepared
    selfcal: Optional[SelfCalTrace]
    clean_uncalibrated: torch.Tensor


def prepare(data: Visibilities, config: ImagingConfig) -> Prepared:
    """Grid, dirty image and PSF of the data at the config's pixel scale (module docstring); ValueError if
    nothing falls on the grid."""
    N, scale = config.N, config.pixel_scale_arcsec
    grid = grid_weighted(data.uv, data.vis, data.weight, N, scale, config.grid.weighting, config.grid.robust)
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


def posterior(prior: Denoiser, prep: Prepared, data: Visibilities, config: ImagingConfig,
              generators: Sequence[torch.Generator]) -> ImagingResult:
    """The posterior of prepared data: on the grid (``gridded_posterior``), then under the visibilities' exact
    likelihood (``exactly_refined``) unless the config's likelihood is "gridded"."""
    r = gridded_posterior(prior, prep.obs, config.sampler, config.clean, generators, dirty=(prep.dirty, prep.psf))
    if config.likelihood.refine is None:
        return r
    return exactly_refined(prior, r, prep.obs, prep.likelihood_data(data), config.likelihood.refine, generators)


def chained(prior: Denoiser, r: ImagingResult, prep: Prepared, data: Visibilities, config: ImagingConfig,
            trace: SelfCalTrace, generators: Sequence[torch.Generator]) -> tuple[ImagingResult, SelfCalTrace]:
    """The result's samples refined under the exact likelihood (``config.likelihood.refine``, set) of the raw on-field
    ``data`` with the gains as a block of the chain (``selfcal_chain``), from ``trace.solution``; the trace
    returned ends with the final gains."""
    N, scale, F = config.N, config.pixel_scale_arcsec, r.flux_scale

    def like_of(d: Visibilities) -> VisibilityLikelihood:
        values = zero_spacing_amplitudes(d.uv, d.vis, N, scale)
        return exact_likelihood(prep.obs, d.with_values(values), r.sigma_jy / prep.obs.sigma_weights,
                                r.total_flux_clean, F)

    block = GainBlock(data, like_of, trace, config.likelihood.refine, scale, F, first_round=1,
                      generators=stage_generators(generators, "gain draws"))
    x, trace = calibrating_refine(prior, (2 * r.samples / F - 1)[None], block,
                                  stage_generators(generators, "gain chain"))
    samples = (x[0].double() + 1) / 2 * F
    mean = samples.mean(0)
    std = samples.std(0) if len(samples) > 1 else torch.zeros_like(mean)
    return replace(r, samples=samples, mean=mean, std=std, total_flux=float(mean.sum()), likelihood="exact"), trace


def image_visibilities(prior: Denoiser, data: Visibilities, config: ImagingConfig,
                       generators: Sequence[torch.Generator]) -> Imaged:
    """prepare → (CLEAN self-calibration rounds) → posterior → (its chain again with the gain block) (module
    docstring), at the config's pixel scale with its self-calibration (decided: not "auto"). The gains are
    solved on the samples an N×N image can model, and applied to all."""
    selfcal = config.selfcal
    if selfcal.mode == "auto":
        raise ValueError("the self-calibration's mode must be decided before imaging (got 'auto')")
    prep = prepare(data, config)
    clean_raw = clean_components(prep, config.clean)
    if selfcal.mode == "none":
        return Imaged(posterior(prior, prep, data, config, generators), data, prep, None, clean_raw)
    trace, scale, on = SelfCalTrace(selfcal), config.pixel_scale_arcsec, prep.on
    modelled = data.subset(on)
    if selfcal.start == "point":
        trace = point_start(modelled, config.N, scale, trace)
    trace, _ = iterate(modelled, lambda d: clean_components(prepare(d, config), config.clean, positive=True),
                       scale, trace, "clean", first_round=int(selfcal.start == "point"), rounds=selfcal.clean_rounds)
    calibrated = data.corrected(trace.solution)
    prep = prepare(calibrated, config)
    first = posterior(prior, prep, calibrated, config, generators)
    if config.likelihood.refine is None:  # the gridded posterior: CLEAN rounds only
        return Imaged(first, calibrated, prep, trace, clean_raw)
    r, trace = chained(prior, first, prep, modelled, config, replace(trace, converged=False), generators)
    return Imaged(r, data.corrected(trace.solution), prep, trace, clean_raw)

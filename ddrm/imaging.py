"""Imaging visibilities, self-calibrated or not: samples at their own (u, v) in, the posterior out.

    prepare    the nearest-cell grid (the fast operator of DDRM), and the dirty image and PSF of the
               visibilities themselves (exact NUFFT, the grid's weighting)
    posterior  ``interferometry.imaging.image_observation``: DDRM on the grid, then split-Gibbs sweeps under
               the exact likelihood of the visibilities (``exact_gibbs``)
    selfcal    ``selfcal``: CLEAN rounds, the posterior of the corrected data, posterior rounds

Pure: arrays and tensors in, errors are ValueError. The stage's I/O is ``tasks.image``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional, Sequence

import numpy as np
import torch

from .baselines import CleanConfig, dirty_noise_std, hogbom_clean
from .exact_gibbs import ExactRefineConfig
from .interferometry.dirty import nufft_dirty, nufft_psf
from .interferometry.fit import on_field
from .interferometry.gridding import grid_weighted, visibility_imaging_weights, zero_spacing_amplitudes
from .interferometry.imaging import GriddedObservation, ImagingResult, exact_samples, image_observation, \
    observation_from_grid
from .sampling import SamplerConfig
from .selfcal import CalData, SelfCalConfig, SelfCalRecord, iterate, point_start


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


def clean_components(prep: Prepared, clean: CleanConfig) -> torch.Tensor:
    """Hogbom CLEAN's components (N, N) Jy/pixel of the prepared data, to ``threshold_sigmas`` × the noise."""
    threshold = clean.threshold_sigmas * dirty_noise_std(prep.obs.op, prep.obs.sigma_weights)
    return hogbom_clean(prep.dirty[None], prep.psf, gain=clean.gain, max_iter=clean.max_iter,
                        threshold=threshold).model[0].double()


def posterior(prep: Prepared, data: CalData, settings: ImagingSettings, denoiser, schedule,
              generators: Sequence[torch.Generator]) -> ImagingResult:
    """The posterior of prepared data (``image_observation``), exact unless ``settings.exact`` is None."""
    return image_observation(prep.obs, denoiser, schedule, settings.sampler, generators, K=settings.K, S=settings.S,
                             noise=settings.noise, clean=settings.clean, dirty=(prep.dirty, prep.psf),
                             visibilities=prep.likelihood_data(data), exact=settings.exact)


def refined(r: ImagingResult, prep: Prepared, data: CalData, settings: ImagingSettings, denoiser, schedule,
            generators: Sequence[torch.Generator]) -> ImagingResult:
    """The result's samples refined under the exact likelihood of other (re-calibrated) on-field data."""
    values = zero_spacing_amplitudes(data.uv, data.vis, settings.N, settings.pixel_scale_arcsec)
    samples = exact_samples(r.samples / r.flux_scale, prep.obs, (data.uv, values, data.weight),
                            r.sigma_jy / prep.obs.sigma_weights, r.total_flux_clean, r.flux_scale, denoiser, schedule,
                            settings.exact or ExactRefineConfig(), generators) * r.flux_scale
    mean = samples.mean(0)
    std = samples.std(0) if len(samples) > 1 else torch.zeros_like(mean)
    return replace(r, samples=samples, mean=mean, std=std, total_flux=float(mean.sum()), likelihood="exact")


def image_visibilities(data: CalData, settings: ImagingSettings, denoiser, schedule,
                       generators: Sequence[torch.Generator], selfcal: Optional[SelfCalConfig] = None) -> Imaged:
    """prepare → (CLEAN self-calibration rounds) → posterior → (posterior rounds) (module docstring). The
    gains are solved on the samples an N×N image can model, and applied to all."""
    prep = prepare(data, settings)
    clean_raw = clean_components(prep, settings.clean)
    if selfcal is None or selfcal.mode == "none":
        return Imaged(posterior(prep, data, settings, denoiser, schedule, generators), data, prep, None, clean_raw)
    record, scale, on = SelfCalRecord(selfcal), settings.pixel_scale_arcsec, prep.on
    modelled = data.subset(on)
    if selfcal.start == "point":
        point_start(modelled, settings.N, scale, record)
    iterate(modelled, lambda d: clean_components(prepare(d, settings), settings.clean), scale, record, "clean",
            first_round=int(selfcal.start == "point"), rounds=selfcal.clean_rounds)
    calibrated = data.corrected(record.solution)
    prep = prepare(calibrated, settings)
    first = posterior(prep, calibrated, settings, denoiser, schedule, generators)
    if settings.exact is None:  # the gridded posterior: CLEAN rounds only
        return Imaged(first, calibrated, prep, record, clean_raw)
    state = {"r": first, "round": 0}

    def posterior_image(d: CalData) -> torch.Tensor:
        if state["round"] > 0:  # the first call images the data the posterior was drawn from
            gens = [torch.Generator(device=g.device).manual_seed(g.initial_seed() + 10 + state["round"])
                    for g in generators]
            state["r"] = refined(state["r"], prep, d, settings, denoiser, schedule, gens)
        state["round"] += 1
        return state["r"].mean

    record.converged = False
    iterate(modelled, posterior_image, scale, record, "posterior", first_round=1)
    return Imaged(state["r"], data.corrected(record.solution), prep, record, clean_raw)

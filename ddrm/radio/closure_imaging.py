"""Imaging from closure quantities: the posterior where station gains are unknown, then the gains.

    flux       the total flux F_tot: the user's, else the mean amplitude of the baselines shorter than half
               a cell (EHT's intra-site pairs: the field is unresolved there), else CLEAN's total
    start      a circular Gaussian of F_tot whose size fits the amplitudes' fall with |uv| in the main lobe
               (ln|V| = ln F_tot - 2π²σ²|uv|², the median σ over samples with |V| > F/2, ``gaussian_sigma``;
               amplitudes carry only the gains' modest errors), then a regularised
               closure fit from it (``rml_start``: entropy against the Gaussian and TV², each weighted ``RML_WEIGHT``
               per closure, re-blurred between rounds to half the nominal beam: ehtim's habit), from
               the narrowest of 1, 2, 4 × that σ whose fit fits the closures (``fitted_start``), every
               sample from that. Other starts (``start``): "gaussian", the Gaussian itself (a point-symmetric
               sky's closure phases are 0 or π, and from the Gaussian's 0 the von Mises term has no gradient
               towards π: a symmetric ring stayed a blob), or "posterior", the visibility posterior of the data
               phase-self-calibrated to the Gaussian per integration (``imaging.posterior``)
    sweeps     split Gibbs from that start with the closure likelihood as the data term
               (``radio.closure_likelihood``: x | z drawn by randomise-then-optimise), ρ from
               ``rho_max`` to ``rho_min`` (``exact_gibbs.refine``): the image answers to the closure phases and
               log closure amplitudes only, which no gain corrupts, and to F_tot
    gains      the raw visibilities self-calibrated (amplitude and phase, per integration) against the posterior
               mean, as difmap and ehtim pipelines do after closure imaging: the calibrated data and gains.csv;
               the mean's flux (above) sets the amplitude scale (``GainConfig.solnorm`` "none"), not a mean gain
               of 1, which would leave the calibrated data at another scale than the image they were solved on

Pure: arrays and tensors in; errors are ValueError.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Optional, Sequence

import numpy as np
import torch

from ddrm.diffusion.ddpm import Denoiser
from ddrm.radio.baselines import dirty_noise_std, hogbom_clean
from ddrm.radio.closure import FITTED_CHI2, TIME_TOL_S, closures
from ddrm.radio.closure_likelihood import ClosureLikelihood, closure_step
from ddrm.radio.exact_gibbs import ExactRefineConfig, refine
from ddrm.radio.gains import GainConfig
from ddrm.radio.gridding import ARCSEC, max_projected_baseline
from ddrm.radio.imaging import Imaged, ImagingResult, Prepared, clean_components, posterior, prepare
from ddrm.radio.imaging_config import ImagingConfig
from ddrm.radio.selfcal import SelfCalConfig, SelfCalTrace, chi2, solve
from ddrm.radio.visibilities import Visibilities
from ddrm.seeding import stage_generators

START_PEAK = 0.5  # the Gaussian start's peak in the prior's [0, 1] range: room for a brighter compact source
START_WIDTHS = (1.0, 2.0, 4.0)  # the start Gaussian's σ over the main lobe's, tried narrowest first
RML_WEIGHT = 0.025  # ``rml_start``'s TV² and entropy weights per closure: the closures lead, as in ehtim's recipe
RESTART_BLUR = 0.5  # ``rml_start`` re-blurs between rounds to this share of the nominal beam 1/max|uv| (ehtim's)
BLUR_PIXELS = 2.0  # ``rml_start``'s re-blur (FWHM, pixels) where no beam is given
MAIN_LOBE = 0.5  # |V|/F above this: the Gaussian start's size is read from the main lobe only
INTEGRATION_TOL_S = TIME_TOL_S  # samples this close in time share an integration (the closures' grouping)


def integrations(time_jd: np.ndarray) -> np.ndarray:
    """(n,) index of each sample's integration (times within ``INTEGRATION_TOL_S``)."""
    key = np.round(np.asarray(time_jd) * 86400 / INTEGRATION_TOL_S).astype(np.int64)
    return np.unique(key, return_inverse=True)[1].ravel()


def short_baseline_flux(data: Visibilities, N: int, pixel_scale_arcsec: float) -> Optional[float]:
    """The weighted mean amplitude (Jy) of the samples shorter than half a cell, 1/(2 N Δθ), where the whole
    field is unresolved; None without one."""
    short = (np.hypot(data.uv[:, 0], data.uv[:, 1]) < 1 / (2 * N * pixel_scale_arcsec * ARCSEC)) & (data.weight > 0)
    if not short.any():
        return None
    return float(np.average(np.abs(data.vis[short]), weights=data.weight[short]))


def gaussian_sigma(data: Visibilities, flux: float) -> float:
    """σ (radians) of the circular Gaussian whose main lobe F exp(-2π²σ²|uv|²) the amplitudes follow: the median
    over samples of S/N ≥ 3 in the main lobe, |V|/F in [``MAIN_LOBE``, 0.98], of σᵢ² = -ln(|Vᵢ|/F) / (2π²|uvᵢ|²)
    (without three such samples, over |V|/F in [0.02, 0.98]); 0 (a point) where none. The median over the main
    lobe, not a least-squares fit through the origin, which weighs each sample by |uv|⁴ and lets sidelobes set σ."""
    amp = np.abs(data.vis)
    bright = amp * np.sqrt(data.weight) >= 3
    for low in (MAIN_LOBE, 0.02):
        ok = bright & (amp > low * flux) & (amp < 0.98 * flux)
        if ok.sum() >= 3:
            s2 = -np.log(amp[ok] / flux) / (2 * math.pi ** 2 * (data.uv[ok] ** 2).sum(1))
            return math.sqrt(float(np.median(s2)))
    return 0.0


def gaussian_image(N: int, pixel_scale_arcsec: float, flux: float, sigma_rad: float) -> torch.Tensor:
    """A circular Gaussian (N, N) Jy/pixel of total ``flux`` centred at (N//2, N//2), σ at least one pixel."""
    s = max(sigma_rad / (pixel_scale_arcsec * ARCSEC), 1.0)
    r = torch.arange(N, dtype=torch.float64) - N // 2
    g = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * s ** 2))
    return g * (flux / g.sum())


def restart_blur(uv: np.ndarray, pixel_scale_arcsec: float) -> float:
    """The FWHM (pixels) ``rml_start`` re-blurs to between rounds: ``RESTART_BLUR`` / max|uv| (uv (n, 2) λ)."""
    return RESTART_BLUR / max_projected_baseline(uv) / (pixel_scale_arcsec * ARCSEC)


def rml_start(like: ClosureLikelihood, prior_image: torch.Tensor, *, rounds: int = 3, iterations: int = 150,
              tv2: float = RML_WEIGHT, entropy: float = RML_WEIGHT,
              blur_pixels: float = BLUR_PIXELS) -> torch.Tensor:
    """A closure-fitted image (N, N) Jy/pixel by regularised maximum likelihood, ehtim's habit: I = exp θ > 0
    minimises L(I) + n (``tv2`` · Σ|∇I|² N² / F² + ``entropy`` · Σ I ln(I/P) / F), n the closures, P the
    Gaussian ``prior_image`` (total F), by L-BFGS from P, ``rounds`` times, each restarted from the last
    image blurred by ``blur_pixels`` (FWHM): a start that already answers to the closures, for the chain.
    No pixel exceeds F (θ ≤ ln F), and a round that ends non-finite is dropped for the last finite image."""
    from ddrm.inverse.metrics import gaussian_blur

    F = float(prior_image.sum())
    n = len(like.phase) + len(like.logamp)
    P = prior_image.double().clamp_min(1e-12 * float(prior_image.max()))
    N = P.shape[-1]
    image = last = P
    for _ in range(rounds):
        theta = torch.log(image.clamp_min(1e-12 * float(image.max()))).clone().requires_grad_(True)
        opt = torch.optim.LBFGS([theta], lr=1, max_iter=iterations, history_size=20, line_search_fn="strong_wolfe")

        def objective() -> torch.Tensor:
            opt.zero_grad()
            img = torch.exp(theta.clamp(max=math.log(F)))  # no pixel above the total flux: exp θ cannot overflow
            grad2 = (img[1:] - img[:-1]).pow(2).sum() + (img[:, 1:] - img[:, :-1]).pow(2).sum()
            reg = tv2 * grad2 * N ** 2 / F ** 2 + entropy * (img * torch.log(img / P)).sum() / F
            loss = like.neg_log(img[None]).sum() + n * reg
            loss.backward()
            return loss

        with torch.enable_grad():
            opt.step(objective)
        fitted = torch.exp(theta.detach().clamp(max=math.log(F)))
        if not bool(torch.isfinite(fitted).all()):
            break  # a diverged round (a non-finite step): keep the last finite image
        last, image = fitted, gaussian_blur(fitted, blur_pixels)
    return last


def fitted_start(like: ClosureLikelihood, N: int, pixel_scale_arcsec: float, flux: float, sigma_rad: float, *,
                 blur_pixels: float = BLUR_PIXELS, weight: float = RML_WEIGHT) -> tuple[torch.Tensor, torch.Tensor]:
    """(the Gaussian (N, N), ``rml_start`` from it) for the narrowest Gaussian of ``START_WIDTHS`` × σ whose
    regularised fit fits the closures (pooled χ² ≤ ``FITTED_CHI2``), else the best fitting one: the entropy
    term holds flux near the Gaussian, so one narrower than the source (a double's main lobe is its brighter
    component's) leaves the rest of the source unfitted, while a wider one than needed lets flux spread. Each fit
    is ``rml_start`` with TV² and entropy weights ``weight`` and a re-blur of ``blur_pixels`` (FWHM)."""
    best: Optional[tuple[float, torch.Tensor, torch.Tensor]] = None
    for width in START_WIDTHS if sigma_rad > 0 else START_WIDTHS[:1]:
        gauss = gaussian_image(N, pixel_scale_arcsec, flux, width * sigma_rad)
        fitted = rml_start(like, gauss, tv2=weight, entropy=weight, blur_pixels=blur_pixels)
        score = like.pooled_chi2(fitted)
        if score <= FITTED_CHI2:
            return gauss, fitted
        if best is None or not score >= best[0]:
            best = (score, gauss, fitted)
    return best[1], best[2]


def clean_only(prep: Prepared, config: ImagingConfig, F: float, flux: float) -> ImagingResult:
    """An ``ImagingResult`` holding the prepared data's dirty and CLEAN images (no posterior yet) at flux scale F."""
    sigma = prep.obs.sigma_weights
    c = hogbom_clean(prep.dirty[None], prep.psf, gain=config.clean.gain, max_iter=config.clean.max_iter,
                     threshold=config.clean.threshold_sigmas * dirty_noise_std(prep.obs.op, sigma))
    empty = torch.zeros_like(prep.dirty, dtype=torch.float64)
    return ImagingResult(mean=empty, std=empty, dirty=prep.dirty, clean=c.restored[0],
                         clean_per_pixel=c.restored_per_pixel[0], beam=c.beam, flux_scale=F, flux_scale_initial=F,
                         sigma_y=2 * sigma / F, sigma_jy=sigma, chi2_gridded=float("nan"), total_flux=flux,
                         total_flux_clean=float(c.model.sum()), seconds=0.0, samples=empty[None],
                         clean_model=c.model[0].double())


def image_closures(prior: Denoiser, data: Visibilities, imaging: ImagingConfig,
                   generators: Sequence[torch.Generator], *, gains: bool = True) -> Imaged:
    """flux → start → sweeps → gains (module docstring) at the config's pixel scale, with its
    ``likelihood.closure`` settings and ``likelihood.total_flux`` (Jy; None: from the data); closures form
    per time and frequency. Without ``gains`` no gain is solved (neither the start's phases, unless the start
    is the visibility posterior of the phase-corrected data, nor the gains against the mean): the samples are
    the same, and the data, dirty and CLEAN images are the uncorrected data's (what a field search needs of a
    candidate: its mean)."""
    t0 = time.perf_counter()
    config, total_flux = imaging.likelihood.closure, imaging.likelihood.total_flux
    N, scale = imaging.N, imaging.pixel_scale_arcsec
    data = data.with_intervals(integrations(data.time_jd))
    prep = prepare(data, imaging)
    clean_raw = clean_components(prep, imaging.clean)
    on = prep.on
    modelled = data.subset(on)
    cl = closures(modelled.vis, modelled.weight, modelled.antenna1, modelled.antenna2, modelled.time_jd,
                  modelled.freq_hz, snr_cut=config.snr_cut)
    flux = total_flux or short_baseline_flux(modelled, N, scale) or float(clean_raw.sum())
    if not flux > 0:
        raise ValueError("no total flux: give --total-flux (Jy)")
    like = ClosureLikelihood.build(cl, modelled.uv, N=N, pixel_scale_arcsec=scale, total_flux=flux,
                                   sigma_flux=config.flux_sigma * flux, centroid_sigma=config.centroid_sigma)
    sigma = gaussian_sigma(modelled, flux)
    if config.start == "rml":
        start, begin = fitted_start(like, N, scale, flux, sigma, blur_pixels=restart_blur(modelled.uv, scale))
    else:
        start = begin = gaussian_image(N, scale, flux, sigma)
    if gains or config.start == "posterior":  # that start images the phase-corrected data
        phases = solve(modelled, start, scale, GainConfig(mode="phase", solint=INTEGRATION_TOL_S * 2))
        started = data.corrected(phases)
        trace = SelfCalTrace(SelfCalConfig(mode="amp-phase", solint=INTEGRATION_TOL_S * 2, start="point"),
                             solution=phases).with_row({"stage": "gaussian-start", "mode": "phase",
                                                         "chi2": chi2(started.subset(on), start, scale)})
        prep = prepare(started, imaging)
    if config.start in ("gaussian", "rml"):
        F = float(begin.max()) / START_PEAK
        x0 = (2 * begin / F - 1).expand(imaging.sampler.samples, N, N)
        first = clean_only(prep, imaging, F, flux)
    else:
        first = posterior(prior, prep, started, imaging, generators)
        F = first.flux_scale
        x0 = 2 * first.samples / F - 1

    def step(z: torch.Tensor, rho: float, sample: bool) -> torch.Tensor:
        return closure_step(like, z, rho, F, gens, sample, config.lbfgs)

    gens = stage_generators(generators, "closure step")
    sweeps = ExactRefineConfig(config.rho_max, config.rho_min, config.iterations, None)
    x = refine(prior, x0[None], step, sweeps, stage_generators(generators, "closure chain"))
    samples = (x[0].double() + 1) / 2 * F
    if not bool(torch.isfinite(samples).all()):
        raise ValueError(f"the closure posterior diverged (non-finite samples at flux scale {F:.3g} Jy): "
                         "try --total-flux or --data visibilities")
    seconds = time.perf_counter() - t0
    mean = samples.mean(0)
    std = samples.std(0) if len(samples) > 1 else torch.zeros_like(mean)
    result = replace(first, samples=samples, mean=mean, std=std, total_flux=float(mean.sum()), likelihood="closures",
                     seconds=seconds)
    if not gains:
        return Imaged(result, data, prep, None, clean_raw)
    solution = solve(modelled, mean, scale, GainConfig(mode="amp-phase", solint=INTEGRATION_TOL_S * 2, solnorm="none"))
    calibrated = data.corrected(solution)
    trace = replace(trace, solution=solution, converged=True).with_row(
        {"stage": "closure-mean", "mode": "amp-phase", "chi2": chi2(calibrated.subset(on), mean, scale)})
    return Imaged(result, calibrated, prepare(calibrated, imaging), trace, clean_raw)

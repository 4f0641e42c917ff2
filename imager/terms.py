"""Which data term the posterior answers to, whether the data ask for self-calibration, and the imaging of one
field with them.

Self-calibration "auto" is decided by the data, not by the array, once, before the field ladder, with a quick
posterior (``QUICK``: K ≤ 10, S = 2, 6 exact sweeps): the file is imaged without gains at the ladder's largest
field (s₀, where an extended source fits if anywhere). Where that mean fits the raw visibilities (χ² per
coordinate ≤ ``GAIN_EVIDENCE``) no gain is solved. Otherwise, at the ladder's middle scale, it is imaged without
gains and with phase self-calibration, which is kept only if its mean fits the closures better (pooled
closure χ², which no gain can change, so the gains are not rewarded for what they absorb): self-calibration
must improve the image, not the fit. The ladder's candidates and the final image then use that decision.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Optional

import numpy as np

from ddrm.diffusion.ddpm import Denoiser
from ddrm.inverse.samplers import make_generators
from ddrm.radio.closure import FITTED_CHI2
from ddrm.radio.closure_imaging import image_closures
from ddrm.radio.imaging import Imaged, image_visibilities
from ddrm.radio.imaging_config import ImagingConfig
from ddrm.radio.phase_stability import choose_data_term, phase_scatter_ratio
from ddrm.radio.visibilities import Visibilities
from imager.product import DataTerm

GAIN_EVIDENCE = FITTED_CHI2  # raw χ² per coordinate up to this: the data are fitted without gains
QUICK = {"K": 10, "samples": 2, "iterations": 6}  # the posterior that decides the self-calibration

Imager = Callable[[float, Optional[np.ndarray]], Imaged]
Final = Callable[[float], tuple[Imaged, str, str]]


def data_term(vis: Visibilities, cfg: ImagingConfig) -> DataTerm:
    """The data term, why, and the phase-step statistic R with the number of steps it rests on
    (``radio.phase_stability``)."""
    ratio, steps = phase_scatter_ratio(vis.vis, vis.weight, vis.antenna1, vis.antenna2, vis.time_jd, vis.freq_hz)
    term, reason = choose_data_term(cfg.likelihood.data, ratio)
    return DataTerm(data_term=term, reason=reason, phase_step_ratio=ratio, n_phase_steps=steps)


def imager(data: Visibilities, cfg: ImagingConfig, prior: Denoiser, seed: int, term: str,
           gain_evidence: Callable[[Imaged, float], tuple[float, float]]) -> tuple[Imager, Final]:
    """(candidate(scale, keep): the samples ``keep`` (None: all) of ``data`` (with their solution intervals)
    imaged at one pixel scale, final(scale): all the
    data imaged there -> (Imaged, the self-calibration applied, why)). Closures: the gains are solved against
    the closure posterior's mean, amplitude and phase per integration (``ddrm.radio.closure_imaging``).
    ``gain_evidence(imaged, scale)``: (raw χ², pooled closure χ²) of an image's mean (module docstring)."""
    if term == "closures":
        def closure_at(scale: float, keep: Optional[np.ndarray]) -> Imaged:  # a candidate (keep) needs no gains
            d = data if keep is None else kept(data, keep)
            return image_closures(prior, d, cfg.at_scale(scale), make_generators([seed]), gains=keep is None)
        return closure_at, lambda scale: (closure_at(scale, None), "amp-phase",
                                          "closures: per integration, against the closure posterior's mean")

    if cfg.selfcal.mode != "auto":
        applied, reason = cfg.selfcal.mode, "set by the user"
    else:
        applied, reason = decide_selfcal(prior, data, cfg, seed, gain_evidence)
    decided = replace(cfg, selfcal=cfg.selfcal_as(applied))

    def image_at(scale: float, keep: Optional[np.ndarray]) -> Imaged:
        d = data if keep is None else kept(data, keep)
        return image_visibilities(prior, d, decided.at_scale(scale), make_generators([seed]))
    return image_at, lambda scale: (image_at(scale, None), applied, reason)


def kept(data: Visibilities, keep: np.ndarray) -> Visibilities:
    """The samples ``keep`` (n,) bool, their solution intervals renumbered 0.. (held-out scans leave gaps)."""
    sub = data.subset(keep)
    return sub.with_intervals(np.unique(sub.interval, return_inverse=True)[1].ravel())


def decide_selfcal(prior: Denoiser, data: Visibilities, cfg: ImagingConfig, seed: int,
                   gain_evidence: Callable[[Imaged, float], tuple[float, float]],
                   scale: Optional[float] = None) -> tuple[str, str]:
    """(the self-calibration's mode, why) as "auto" decides it (module docstring) at ``scale`` (default: the
    ladder's largest field, then its middle one)."""
    sampler = replace(cfg.sampler, K=min(cfg.sampler.K, QUICK["K"]), samples=QUICK["samples"])
    likelihood = replace(cfg.likelihood, exact=replace(cfg.likelihood.exact, iterations=QUICK["iterations"]))
    quick = replace(cfg, sampler=sampler, likelihood=likelihood, selfcal=cfg.selfcal_as("none"))
    gens = lambda: make_generators([seed])  # noqa: E731
    largest, middle = (scale, scale) if scale else (quick_scale(data, cfg, 0), quick_scale(data, cfg))
    plain = image_visibilities(prior, data, quick.at_scale(largest), gens())
    raw, closure = gain_evidence(plain, largest)
    if not raw > GAIN_EVIDENCE:
        return "none", f"auto: the image without gains fits the raw data (chi2 {raw:.3g} <= {GAIN_EVIDENCE:g})"
    quick = quick.at_scale(middle)
    if middle != largest:
        raw, closure = gain_evidence(image_visibilities(prior, data, quick, gens()), middle)
    phased = image_visibilities(prior, data, replace(quick, selfcal=cfg.selfcal_as("phase")), gens())
    _, closure_cal = gain_evidence(phased, quick.pixel_scale_arcsec)
    if closure_cal < closure:
        return "phase", (f"auto: raw chi2 {raw:.3g} without gains; phase self-calibration lowered the "
                         f"closure chi2 from {closure:.3g} to {closure_cal:.3g}")
    return "none", (f"auto: raw chi2 {raw:.3g} without gains, but phase self-calibration did not lower the "
                    f"closure chi2 ({closure:.3g} -> {closure_cal:.3g}): the data are calibrated")


def quick_scale(data: Visibilities, cfg: ImagingConfig, rung: Optional[int] = None) -> float:
    """The ladder's scale (arcsec) for the visibilities' data term: its ``rung`` (0: the largest field; None:
    the middle one)."""
    from ddrm.radio.gridding import fit_pixel_scale

    if cfg.grid.pixel_scale_arcsec is not None:
        return cfg.grid.pixel_scale_arcsec
    fractions = sorted(cfg.grid.fractions_for("visibilities"), reverse=True)
    rung = len(fractions) // 2 if rung is None else rung
    return fit_pixel_scale(data.uv, cfg.N, cfg.grid.fit_fraction) * fractions[rung]

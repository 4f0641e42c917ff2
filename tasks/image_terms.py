"""Which data term the posterior answers to, whether the data ask for self-calibration, and the imaging of one
field with them.

Self-calibration "auto" is decided by the data, not by the array, once, before the field ladder, at its
middle scale with a quick posterior (``QUICK``: K ≤ 10, S = 2, 6 exact sweeps): the file is imaged without
gains. Where that mean fits the raw visibilities (χ² per coordinate ≤ ``GAIN_EVIDENCE``) no gain is solved.
Otherwise it is imaged again with phase self-calibration, which is kept only if its mean fits the closures
better (pooled closure χ², which no gain can change, so the gains are not rewarded for what they absorb):
self-calibration must improve the image, not the fit. The ladder's candidates and the final image then use
that decision.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, Optional

import numpy as np

from configs.image import ImageConfig
from ddrm.closure_imaging import image_closures
from ddrm.ddpm import Denoiser
from ddrm.imaging import Imaged, ImagingSettings, image_visibilities
from ddrm.interferometry.phase_stability import choose_data_term, phase_scatter_ratio
from ddrm.samplers import make_generators
from ddrm.selfcal import CalData, SelfCalConfig
from sources.uvfits import Visibilities

GAIN_EVIDENCE = 2.0  # raw χ² per coordinate up to this: the data are fitted without gains
QUICK = {"K": 10, "samples": 2, "iterations": 6}  # the posterior that decides the self-calibration

Imager = Callable[[float, Optional[np.ndarray]], Imaged]
Final = Callable[[float], tuple[Imaged, str, str]]


def data_term(vis: Visibilities, cfg: ImageConfig) -> dict[str, Any]:
    """The summary's account of the data term: "data_term", "data_term_reason" and the phase-step statistic
    R with the number of steps it rests on (``interferometry.phase_stability``)."""
    ratio, steps = phase_scatter_ratio(vis.vis, vis.weight, vis.antenna1, vis.antenna2, vis.time_jd, vis.freq_hz)
    term, reason = choose_data_term(cfg.data, ratio)
    return {"data_term": term, "data_term_reason": reason, "phase_step_ratio": ratio, "n_phase_steps": steps}


def imager(vis: Visibilities, data: CalData, cfg: ImageConfig, prior: Denoiser, seed: int, term: str,
           settings_for: Callable[[ImageConfig, float], ImagingSettings],
           gain_evidence: Callable[[Imaged, float], tuple[float, float]]) -> tuple[Imager, Final]:
    """(candidate(scale, keep): the samples ``keep`` (None: all) imaged at one pixel scale, final(scale): all the
    data imaged there -> (Imaged, the self-calibration applied, why)). Closures: the gains are solved against
    the closure posterior's mean, amplitude and phase per integration (``ddrm.closure_imaging``).
    ``gain_evidence(imaged, scale)``: (raw χ², pooled closure χ²) of an image's mean (module docstring)."""
    if term == "closures":
        def closure_at(scale: float, keep: Optional[np.ndarray]) -> Imaged:
            d, f = (data, vis.freq_hz) if keep is None else (kept(data, keep), vis.freq_hz[keep])
            return image_closures(prior, d, f, settings_for(cfg, scale), make_generators([seed]), cfg.closure,
                                  cfg.total_flux)
        return closure_at, lambda scale: (closure_at(scale, None), "amp-phase",
                                          "closures: per integration, against the closure posterior's mean")

    if cfg.selfcal != "auto":
        selfcal, applied, reason = cfg.selfcal_for(False)
    else:
        selfcal, applied, reason = decide_selfcal(prior, data, cfg, seed, settings_for, gain_evidence)

    def image_at(scale: float, keep: Optional[np.ndarray]) -> Imaged:
        d = data if keep is None else kept(data, keep)
        return image_visibilities(prior, d, settings_for(cfg, scale), make_generators([seed]), selfcal)
    return image_at, lambda scale: (image_at(scale, None), applied, reason)


def kept(data: CalData, keep: np.ndarray) -> CalData:
    """The samples ``keep`` (n,) bool, their solution intervals renumbered 0.. (held-out scans leave gaps)."""
    sub = data.subset(keep)
    return replace(sub, interval=np.unique(sub.interval, return_inverse=True)[1].ravel().astype(np.int64))


def decide_selfcal(prior: Denoiser, data: CalData, cfg: ImageConfig, seed: int,
                   settings_for: Callable[[ImageConfig, float], ImagingSettings],
                   gain_evidence: Callable[[Imaged, float], tuple[float, float]],
                   scale: Optional[float] = None) -> tuple[Optional[SelfCalConfig], str, str]:
    """(the self-calibration, its mode, why) as "auto" decides it (module docstring) at ``scale`` (default:
    the ladder's middle one)."""
    quick = replace(cfg, K=min(cfg.K, QUICK["K"]), samples=QUICK["samples"],
                    exact=replace(cfg.exact, iterations=QUICK["iterations"]))
    scale = scale or quick_scale(data, cfg)
    gens = lambda: make_generators([seed])  # noqa: E731
    plain = image_visibilities(prior, data, settings_for(quick, scale), gens(), None)
    raw, closure = gain_evidence(plain, scale)
    if not raw > GAIN_EVIDENCE:
        return None, "none", f"auto: the image without gains fits the raw data (chi2 {raw:.3g} <= {GAIN_EVIDENCE:g})"
    selfcal = SelfCalConfig(mode="phase", solint=cfg.solint, amp_sigma=cfg.amp_sigma, draw=cfg.selfcal_gains == "draw")
    _, closure_cal = gain_evidence(image_visibilities(prior, data, settings_for(quick, scale), gens(), selfcal), scale)
    if closure_cal < closure:
        return selfcal, "phase", (f"auto: raw chi2 {raw:.3g} without gains; phase self-calibration lowered the "
                                  f"closure chi2 from {closure:.3g} to {closure_cal:.3g}")
    return None, "none", (f"auto: raw chi2 {raw:.3g} without gains, but phase self-calibration did not lower the "
                          f"closure chi2 ({closure:.3g} -> {closure_cal:.3g}): the data are calibrated")


def quick_scale(data: CalData, cfg: ImageConfig) -> float:
    """The ladder's middle scale (arcsec) for the visibilities' data term."""
    from ddrm.interferometry.gridding import fit_pixel_scale

    if cfg.pixel_scale_arcsec is not None:
        return cfg.pixel_scale_arcsec
    fractions = cfg.fractions_for("visibilities")
    return fit_pixel_scale(data.uv, cfg.N, cfg.fit_fraction) * fractions[len(fractions) // 2]

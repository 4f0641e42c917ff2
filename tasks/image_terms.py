"""Which data term the posterior answers to, whether the data ask for self-calibration, and the imaging of one
field with them.

Self-calibration "auto" is decided by the data, not by the array: the final field is first imaged without
gains. Where its posterior mean fits the raw visibilities (χ² per coordinate ≤ ``GAIN_EVIDENCE``) no gain
is solved. Otherwise the field is imaged again with phase self-calibration, and the self-calibrated image is
kept only if its mean fits the closures better (pooled closure χ², which no gain can change, so the gains
are not rewarded for what they absorb): self-calibration must improve the image, not the fit. The ladder's
candidates are imaged without gains (they are scored on closures, which gains do not change).
"""

from __future__ import annotations

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
            d, f = (data, vis.freq_hz) if keep is None else (data.subset(keep), vis.freq_hz[keep])
            return image_closures(prior, d, f, settings_for(cfg, scale), make_generators([seed]), cfg.closure,
                                  cfg.total_flux)
        return closure_at, lambda scale: (closure_at(scale, None), "amp-phase",
                                          "closures: per integration, against the closure posterior's mean")

    def image_at(scale: float, keep: Optional[np.ndarray], selfcal: Optional[SelfCalConfig] = None) -> Imaged:
        d = data if keep is None else data.subset(keep)
        return image_visibilities(prior, d, settings_for(cfg, scale), make_generators([seed]), selfcal)

    def final(scale: float) -> tuple[Imaged, str, str]:
        if cfg.selfcal != "auto":
            selfcal, applied, reason = cfg.selfcal_for(False)
            return image_at(scale, None, selfcal), applied, reason
        plain = image_at(scale, None)
        raw, closure = gain_evidence(plain, scale)
        if not raw > GAIN_EVIDENCE:
            return plain, "none", f"auto: the image without gains fits the raw data (chi2 {raw:.3g} <= {GAIN_EVIDENCE:g})"
        selfcal = SelfCalConfig(mode="phase", solint=cfg.solint, amp_sigma=cfg.amp_sigma,
                                draw=cfg.selfcal_gains == "draw")
        calibrated = image_at(scale, None, selfcal)
        _, closure_cal = gain_evidence(calibrated, scale)
        if closure_cal < closure:
            return calibrated, "phase", (f"auto: raw chi2 {raw:.3g} without gains; phase self-calibration lowered the "
                                         f"closure chi2 from {closure:.3g} to {closure_cal:.3g}")
        return plain, "none", (f"auto: raw chi2 {raw:.3g} without gains, but phase self-calibration did not lower the "
                               f"closure chi2 ({closure:.3g} -> {closure_cal:.3g}): the data are calibrated")
    return image_at, final

"""Which data term the posterior answers to, and the imaging of one candidate field with it."""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from configs.image import ImageConfig
from ddrm.closure_imaging import image_closures
from ddrm.ddpm import Denoiser
from ddrm.imaging import Imaged, ImagingSettings, image_visibilities
from ddrm.interferometry.phase_stability import choose_data_term, phase_scatter_ratio
from ddrm.samplers import make_generators
from ddrm.selfcal import CalData, is_vlbi
from sources.uvfits import Visibilities


def data_term(vis: Visibilities, cfg: ImageConfig) -> dict[str, Any]:
    """The summary's account of the data term: "data_term", "data_term_reason" and the phase-step statistic
    R with the number of steps it rests on (``interferometry.phase_stability``)."""
    ratio, steps = phase_scatter_ratio(vis.vis, vis.weight, vis.antenna1, vis.antenna2, vis.time_jd, vis.freq_hz)
    term, reason = choose_data_term(cfg.data, ratio)
    return {"data_term": term, "data_term_reason": reason, "phase_step_ratio": ratio, "n_phase_steps": steps}


def imager(vis: Visibilities, data: CalData, cfg: ImageConfig, prior: Denoiser, seed: int, term: str,
           settings_for: Callable[[ImageConfig, float], ImagingSettings]
           ) -> tuple[Callable[[float, Optional[np.ndarray]], Imaged], str, str]:
    """(image_at(scale, keep): the samples ``keep`` (None: all) imaged at one pixel scale with the data term,
    the self-calibration applied, why). Closures: the gains are solved against the closure posterior's mean,
    amplitude and phase per integration (``ddrm.closure_imaging``)."""
    if term == "closures":
        def image_at(scale: float, keep: Optional[np.ndarray]) -> Imaged:
            d, f = (data, vis.freq_hz) if keep is None else (data.subset(keep), vis.freq_hz[keep])
            return image_closures(prior, d, f, settings_for(cfg, scale), make_generators([seed]), cfg.closure,
                                  cfg.total_flux)
        return image_at, "amp-phase", "closures: per integration, against the closure posterior's mean"
    selfcal, applied, reason = cfg.selfcal_for(is_vlbi(np.stack([vis.u, vis.v], axis=1), vis.freq_hz))

    def image_at(scale: float, keep: Optional[np.ndarray]) -> Imaged:
        d = data if keep is None else data.subset(keep)
        return image_visibilities(prior, d, settings_for(cfg, scale), make_generators([seed]), selfcal)
    return image_at, applied, reason

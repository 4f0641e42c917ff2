"""The pixel scale chosen from the data: a short ladder of fields, scored on the gain-free closures.

The longest baseline fixes the coarsest useful pixel, s₀ = ``fit_fraction`` / (2 max|uv|)
(``gridding.fit_pixel_scale``); it says nothing about how large the source is. At N = 64 on EHT data s₀
gives a 720 μas field for a 40 μas ring, and the FIRST prior fills such a field with galaxy-sized blobs
that lack the compact power the long baselines see (log-closure-amplitude χ² 11 on M87). So the file is
imaged at each candidate s = s₀·f, f in ``ImageConfig.field_fractions`` (default 1, ½, ¼), and the
candidate whose posterior mean has the lowest pooled closure χ²

    score = (n_φ χ²_φ + n_A χ²_A) / (n_φ + n_A)      (closure phases φ, log closure amplitudes A, S/N ≥ 3)

is kept. The closures do not depend on the antenna gains, so the score does not reward a field for what
self-calibration absorbed, and it is the same statistic the summary reports (``image_quality.closure_fit``).
Every candidate draws from the same seeded generators, so the kept result equals a run with
``--pixel-scale`` set to its scale. Ties and files without closures keep the largest field (s₀).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional, Sequence

import numpy as np

from configs.image import ImageConfig, ImagingSettingsError
from ddrm.imaging import Imaged
from ddrm.interferometry.closure import Closures
from ddrm.interferometry.gridding import MAX_OVERSAMPLING, fit_pixel_scale, min_pixel_scale
from reporting.progress import angle
from sources.uvfits import Visibilities
from tasks.image_quality import closure_fit


def candidate_scales(vis: Visibilities, cfg: ImageConfig) -> list[float]:
    """The pixel scales (arcsec) to try: the user's one, or s₀·f for each f of ``cfg.field_fractions``;
    ImagingSettingsError for one finer than the data support (``gridding.min_pixel_scale``)."""
    uv = np.stack([vis.u, vis.v], axis=1)
    scales = [cfg.pixel_scale_arcsec] if cfg.pixel_scale_arcsec is not None else \
        [fit_pixel_scale(uv, cfg.N, cfg.fit_fraction) * f for f in cfg.field_fractions]
    finest = min_pixel_scale(uv)
    if min(scales) < finest:
        raise ImagingSettingsError(
            f"{vis.path.rstrip('/').rsplit('/', 1)[-1]}: a pixel scale of {min(scales):.3g} arcsec is finer than "
            f"the data support ({finest:.3g} arcsec: 1/{MAX_OVERSAMPLING} of the Nyquist pixel of the longest "
            f"baseline); use a larger --pixel-scale or --field-fractions")
    return scales


def closure_score(fit: dict[str, Any]) -> float:
    """Pooled χ² per closure of the posterior mean (module docstring); NaN when there is no closure."""
    n_phase, n_amp = fit["n_closure_phases"], fit["n_log_closure_amplitudes"]
    terms = [(n, fit[key]) for n, key in ((n_phase, "chi2_cphase_mean"), (n_amp, "chi2_logcamp_mean"))
             if n > 0 and fit[key] is not None and math.isfinite(fit[key])]
    total = sum(n for n, _ in terms)
    return sum(n * c for n, c in terms) / total if total else float("nan")


def best_candidate(scores: Sequence[float]) -> int:
    """Index of the lowest finite score; the first (the largest field) on ties or when none is finite."""
    finite = [(s, i) for i, s in enumerate(scores) if math.isfinite(s)]
    return min(finite)[1] if finite else 0


def image_at_best_scale(vis: Visibilities, cfg: ImageConfig, image_at: Callable[[float], Imaged],
                        on_stage: Callable[[int, int, str], None] = lambda done, total, what: None
                        ) -> tuple[Imaged, float, dict[str, Any], Optional[list[dict[str, Any]]], Closures]:
    """(the kept result of ``image_at(scale)``, its scale, its ``closure_fit`` against the raw ``vis``, the
    candidates' record or None when only one scale was possible, the raw closures of its on-field data);
    ``on_stage(done, total, what)`` is told
    before each field (total: the fields and one stage for the products after them)."""
    scales = candidate_scales(vis, cfg)
    kept, record = None, []
    for i, scale in enumerate(scales):
        on_stage(i, len(scales) + 1, f"field {i + 1}/{len(scales)}, pixel {angle(scale)}")
        imaged = image_at(scale)
        fit, cl = closure_fit(vis, imaged, scale)
        record.append({"pixel_scale_arcsec": scale, "closure_score": closure_score(fit),
                       "chi2_cphase_mean": fit["chi2_cphase_mean"], "chi2_logcamp_mean": fit["chi2_logcamp_mean"]})
        if best_candidate([r["closure_score"] for r in record]) == len(record) - 1:
            kept = (imaged, scale, fit, cl)  # only the best so far is held in memory
    imaged, scale, fit, cl = kept
    return imaged, scale, fit, record if len(scales) > 1 else None, cl

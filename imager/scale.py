"""The pixel scale chosen from the data: a short ladder of fields, scored on held-out closures.

The longest baseline fixes the coarsest useful pixel, s₀ = ``fit_fraction`` / (2 max|uv|)
(``gridding.fit_pixel_scale``); it says nothing about how large the source is. At N = 64 on EHT data s₀
gives a 720 μas field for a 40 μas ring, and the FIRST prior fills such a field with galaxy-sized blobs.
So the file is imaged at each candidate s = s₀·f, f in ``GridConfig.fractions_for`` the data term (1, ½, ¼
for the visibilities, ½, ¼, ⅛ for the closures),
from all but a seeded ``HELD_SCANS`` share of whole scans (``crossval.scan_holdout``), and each candidate's
posterior mean is scored on the held-out scans' closures:

    score = (n_φ χ²_φ + n_A χ²_A) / (n_φ + n_A)      (closure phases φ, log closure amplitudes A, S/N ≥ 3)

Held out, a busier image does not score better for fitting the noise of what it saw (in-sample, the largest
field's blobs lowered the score), and the closures do not reward what self-calibration absorbed. But a field
too small for the source cannot fit even the scans it was imaged from, while held-out scans lie in uv gaps
that no field's image predicts well (a jet that fills tens of beams): so only the candidates that fit their own
data, pooled closure χ² on the scans they were imaged from ≤ ``FITS_DATA`` (the bound under which
``imager.terms`` calls the raw data fitted), compete on the held-out score; all do when none fits. The
lowest score wins, unless a smaller field's score exceeds it by at most the standard error of that
difference (paired over the same held-out closures: std of the per-closure differences / √n); then the
smallest such field wins. Closer
than that is a tie, and a tie keeps the smaller field, as in cross-validation's one-standard-error rule: at
one N the smaller field holds fewer beams, so the simpler model, with less room for flux that no datum asks
for (where sparse coverage lets the prior put copies of the source). A field too small for the source does
not fit its own scans and is not eligible. The
winner's scale is then imaged from all the data; every run draws from the same seeded generators, so the
result equals a run with ``--pixel-scale`` set to it. Files without held-out closures keep the largest field
(s₀); a file of one scan is scored in-sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, Optional, Sequence

import numpy as np

from configs.image import ImageConfig, ImagingSettingsError
from ddrm.radio.closure import FITTED_CHI2, Closures, closures
from ddrm.radio.crossval import scan_holdout
from ddrm.radio.fit import fit_chi2, on_field
from ddrm.radio.gridding import ARCSEC, MAX_OVERSAMPLING, fit_pixel_scale, min_pixel_scale
from ddrm.radio.imaging import Imaged
from ddrm.radio.nufft import degrid
from ddrm.radio.visibilities import Visibilities
from imager.product import Candidate, ClosureFit
from imager.quality import closure_fit
from reporting.progress import angle


def candidate_scales(vis: Visibilities, cfg: ImageConfig, term: str) -> list[float]:
    """The pixel scales (arcsec) to try: the user's one, or s₀·f for each f of ``cfg.grid.fractions_for(term)``;
    ImagingSettingsError for one finer than the data support (``gridding.min_pixel_scale``)."""
    uv = vis.uv
    grid = cfg.grid
    scales = [grid.pixel_scale_arcsec] if grid.pixel_scale_arcsec is not None else \
        [fit_pixel_scale(uv, grid.N, grid.fit_fraction) * f for f in grid.fractions_for(term)]
    finest = min_pixel_scale(uv)
    if min(scales) < finest:
        raise ImagingSettingsError(
            f"{vis.path.rstrip('/').rsplit('/', 1)[-1]}: a pixel scale of {min(scales):.3g} arcsec is finer than "
            f"the data support ({finest:.3g} arcsec: 1/{MAX_OVERSAMPLING} of the Nyquist pixel of the longest "
            f"baseline); use a larger --pixel-scale or --field-fractions")
    return scales


def closure_score(fit: ClosureFit) -> float:
    """Pooled χ² per closure of the posterior mean (module docstring; ``ClosureFit.pooled``); NaN when there is
    no closure."""
    return fit.pooled


def eligible(scores: Sequence[float], fitted: Optional[Sequence[Optional[float]]] = None) -> list[int]:
    """The candidates with a finite held-out score that fit the data they were imaged from (``fitted`` χ² ≤
    ``FITS_DATA``; None: not known), or all with a finite score when none fits."""
    fit = [i for i, f in enumerate(fitted or ()) if f is not None and f <= FITS_DATA]
    return [i for i, s in enumerate(scores) if math.isfinite(s) and (i in fit or not fit)]


def lowest(scores: Sequence[float], pool: Sequence[int]) -> int:
    """The index in ``pool`` of the lowest score (the first of equal ones)."""
    return min(pool, key=lambda i: (scores[i], i))


def best_candidate(scores: Sequence[float], fitted: Optional[Sequence[Optional[float]]] = None,
                   errors: Optional[Sequence[Optional[float]]] = None) -> int:
    """Index of the kept field (candidates ordered from the largest field): of the ``eligible`` ones, the
    last (the smallest field) whose held-out score exceeds the lowest by at most its ``errors`` entry (the
    standard error of that difference, ``difference_errors``; None: 0); 0 when no score is finite."""
    pool = eligible(scores, fitted)
    if not pool:
        return 0
    best = lowest(scores, pool)
    return max(i for i in pool if scores[i] - scores[best] <= ((errors[i] if errors else None) or 0.0))


def difference_errors(terms: Sequence[Optional[np.ndarray]], best: int) -> list[float]:
    """The standard error of each candidate's score minus the ``best`` one's, from their per-closure χ² terms
    (n,): paired over the same held-out closures, std(t_i - t_best) / √n; unpaired (other closures: another
    field's on-grid samples) √(se_i² + se_best²); 0 where not known (fewer than two terms)."""
    def se(t: np.ndarray) -> float:
        return float(t.std(ddof=1) / math.sqrt(len(t)))

    ref = terms[best]
    out = []
    for t in terms:
        if t is None or ref is None or len(t) < 2 or len(ref) < 2:
            out.append(0.0)
        else:
            out.append(se(t - ref) if len(t) == len(ref) else math.hypot(se(t), se(ref)))
    return out


HELD_SCANS = 0.2  # the share of scans each candidate field is scored on
SCORE_SNR = 3.0  # candidates are scored on the held-out closures of S/N ≥ this
FITS_DATA = FITTED_CHI2  # pooled closure χ² per closure up to this on its own scans: a candidate fits its data


def heldout_closures(held: Visibilities, on: np.ndarray, snr_cut: float = SCORE_SNR) -> Closures:
    """The held-out samples' closures (S/N ≥ ``snr_cut``) on the field (``on``: the samples an N×N image
    models)."""
    return closures(held.vis[on], held.weight[on], held.antenna1[on], held.antenna2[on], held.time_jd[on],
                    held.freq_hz[on], snr_cut=snr_cut)


def heldout_fit(held: Visibilities, imaged: Imaged, scale: float, snr_cut: float = SCORE_SNR
                ) -> tuple[ClosureFit, np.ndarray]:
    """The candidate mean's closure χ² on the scans ``held`` (the held-out ones, or those it was imaged from;
    CLEAN's not computed: None) and its per-closure terms (``Closures.terms``), whose mean is the pooled score."""
    uv = held.uv
    on = on_field(uv, imaged.result.mean.shape[-1], scale)
    cl = heldout_closures(held, on, snr_cut)
    model = np.asarray(degrid(uv=uv[on], image=imaged.result.mean.double(), pixel_size=scale * ARCSEC))
    return ClosureFit(n_closure_phases=int(len(cl.phase)), n_log_closure_amplitudes=int(len(cl.logamp)),
                      chi2_cphase_mean=cl.chi2_phase(model), chi2_logcamp_mean=cl.chi2_logamp(model),
                      chi2_cphase_clean=None, chi2_logcamp_clean=None), cl.terms(model)


def gain_evidence(vis: Visibilities, imaged: Imaged, scale: float) -> tuple[float, float]:
    """(the mean's χ² per coordinate on the raw visibilities, its pooled closure χ² on them)."""
    chi2, _, _ = fit_chi2({"mean": imaged.result.mean}, vis.uv, vis.vis, vis.weight, scale)
    return chi2["mean"], closure_fit(vis, imaged, scale)[0].pooled


@dataclass(frozen=True, eq=False)
class FieldImage:
    """The kept result of ``final(scale)`` (all the data), its pixel scale (arcsec), its ``closure_fit`` against
    the raw data, the candidates searched (None when only one scale was possible), the raw closures of its
    on-field data, and the self-calibration applied with why."""

    imaged: Imaged
    scale: float
    closure_fit: ClosureFit
    candidates: Optional[tuple[Candidate, ...]]
    raw_closures: Closures
    selfcal: str
    selfcal_reason: str


def scored(vis: Visibilities, held: np.ndarray, imaged: Imaged, scale: float, snr_cut: float = SCORE_SNR
           ) -> tuple[Candidate, np.ndarray]:
    """A candidate field's record and its per-closure held-out terms (closures of S/N ≥ ``snr_cut``): ``imaged``
    from all but the scans ``held`` (n,) bool, scored on them, its ``chi2_fitted`` on the rest; where none is
    held, imaged from all and scored in-sample."""
    if held.any():
        (fit, terms), on = heldout_fit(vis.subset(held), imaged, scale, snr_cut), "held-out scans"
        fitted = heldout_fit(vis.subset(~held), imaged, scale, snr_cut)[0].pooled
    else:
        (fit, terms), on = heldout_fit(vis, imaged, scale, snr_cut), "in-sample (one scan)"
        fitted = fit.pooled
    return Candidate(pixel_scale_arcsec=scale, closure_score=fit.pooled, scored_on=on,
                     n_scored=fit.n_closure_phases + fit.n_log_closure_amplitudes,
                     chi2_cphase_mean=fit.chi2_cphase_mean, chi2_logcamp_mean=fit.chi2_logcamp_mean,
                     chi2_fitted=fitted), terms


def choose(record: list[Candidate], terms: list[np.ndarray]) -> tuple[list[Candidate], int]:
    """The candidates with their ``difference_se`` (against the lowest eligible score) and the index of the
    one kept (``best_candidate``)."""
    scores, fitted = [r.closure_score for r in record], [r.chi2_fitted for r in record]
    pool = eligible(scores, fitted)
    errors = difference_errors(terms, lowest(scores, pool)) if pool else [0.0] * len(record)
    return [replace(r, difference_se=e) for r, e in zip(record, errors)], best_candidate(scores, fitted, errors)


def image_at_best_scale(vis: Visibilities, cfg: ImageConfig, term: str,
                        candidate: Callable[[float, Optional[np.ndarray]], Imaged],
                        final: Callable[[float], tuple[Imaged, str, str]],
                        on_stage: Callable[[int, int, str], None] = lambda done, total, what: None) -> FieldImage:
    """The field search (module docstring) and the final imaging at the kept scale. ``candidate(scale, keep)``
    images the samples ``keep`` (n,) bool; ``final(scale)`` all of them -> (Imaged, the self-calibration
    applied, why); ``on_stage(done, total, what)`` is told before each field (total: the fields, the final
    image and the products)."""
    scales = candidate_scales(vis, cfg, term)
    record: list[Candidate] = []
    terms: list[np.ndarray] = []
    if len(scales) > 1:
        held = scan_holdout(vis.time_jd, HELD_SCANS, cfg.seed)
        for i, scale in enumerate(scales):
            on_stage(i, len(scales) + 2, f"field {i + 1}/{len(scales)}, pixel {angle(scale)} (scans held out)")
            rung, t = scored(vis, held, candidate(scale, ~held if held.any() else None), scale)
            record.append(rung)
            terms.append(t)
    record, kept = choose(record, terms) if record else (record, 0)
    scale = scales[kept]
    on_stage(len(record), len(record) + 2, f"pixel {angle(scale)}, all the data")
    imaged, applied, reason = final(scale)
    fit, cl = closure_fit(vis, imaged, scale)
    return FieldImage(imaged, scale, fit, tuple(record) or None, cl, applied, reason)


def chosen_field(candidates: Optional[tuple[Candidate, ...]], scale: float) -> tuple[Optional[float], Optional[str]]:
    """The kept field's held-out closure score and what it was scored on (None, None without a search)."""
    kept = next((c for c in candidates or () if c.pixel_scale_arcsec == scale), None)
    return (kept.closure_score, kept.scored_on) if kept else (None, None)

"""What imaging one file gives: a frozen ``ImagingProduct`` of small typed sections. ``summary.json`` is its
``to_dict`` (``ddrm.config``: nested dicts) with a schema version, and ``ImagingProduct.from_dict`` reads one
back, so the pool, the command line, the field search and the benchmarks read fields, not strings.

    observation   what the file says: its name, checksum, source, telescope, position, frequency, flags
    field         the grid: N, the pixel scale (and the candidates searched), weighting, samples on the grid
    data_term     visibilities or closures, and why
    posterior     the sampler, the noise, the flux scale, the fluxes, brightness figures, Monte-Carlo error
    fit           χ² on the raw visibilities (first), after the gains, of CLEAN, of the samples, held out
    closures      closure-phase and log-closure-amplitude χ² of the mean and of CLEAN
    selfcal       the self-calibration applied, why, and its trace
    predictive    the held-out posterior predictive check (None without a hold-out)
    images        the products written, and the figures people read off them
    timings       seconds
    provenance    the run key, the prior and its SHA256, the algorithm's version
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional

from ddrm.config import Config
from ddrm.radio.closure import FITTED_CHI2, pooled
from stores.jsonio import rounded

SCHEMA_VERSION = 3  # of summary.json: bump it with any change of these sections
SUMMARY_DIGITS = 6  # significant digits of summary.json's numbers, except those that locate or scale the image
#                    (``imager.file.EXACT_KEYS``)


@dataclass(frozen=True)
class Observation(Config):
    file: str
    input_sha256: str
    source: str
    telescope: str
    date_obs: str
    ra_deg: float
    dec_deg: float
    ref_freq_hz: float
    stokes_from: str
    n_vis: int
    n_flagged: int
    n_bad_coordinates: int
    n_autocorrelations: int
    n_bad_antennas: int
    n_bad_times: int
    n_bad_weights: int
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Candidate(Config):
    """One rung of the field search: its pixel scale, its pooled closure χ² and what it was scored on."""

    pixel_scale_arcsec: float
    closure_score: float
    scored_on: str
    n_scored: int
    chi2_cphase_mean: Optional[float]
    chi2_logcamp_mean: Optional[float]
    chi2_fitted: Optional[float] = None  # pooled closure χ² on the data it was imaged from (imager.scale)
    difference_se: Optional[float] = None  # standard error of its score minus the lowest eligible (imager.scale)


@dataclass(frozen=True)
class Field(Config):
    N: int
    pixel_scale_arcsec: float
    pixel_scale: str  # readable, with its unit
    weighting: str
    robust: float
    n_on_grid: int
    n_off_grid: int
    candidates: Optional[tuple[Candidate, ...]] = None  # None: one scale was possible
    heldout_closure_score: Optional[float] = None
    scored_on: Optional[str] = None


@dataclass(frozen=True)
class DataTerm(Config):
    """What the posterior answered to ("visibilities" or "closures"), why, and the phase-step statistic R
    (``ddrm.radio.phase_stability``) with the number of steps it rests on."""

    data_term: str
    reason: str
    phase_step_ratio: float
    n_phase_steps: int


@dataclass(frozen=True)
class Posterior(Config):
    likelihood: str
    sampler: dict
    K: int
    samples: int
    prior: str
    noise_used: str
    sigma_jy_weights: float
    sigma_jy_scatter: float
    sigma_y_model: float
    flux_scale_jy_per_pixel: float
    flux_scale_initial: float
    total_flux_jy: float
    total_flux_clean_jy: float
    dynamic_range_mean: float
    dynamic_range_clean: float
    faint_flux_mean_jy: float
    faint_flux_clean_jy: float
    n_faint_pixels: int
    mean_mc_error_rms_jy_per_pixel: Optional[float]
    mean_mc_error_peak_ratio: float
    samples_for_mc_rule: Optional[int]
    mc_rule: float


@dataclass(frozen=True)
class Holdout(Config):
    fraction: float
    n_vis: int
    chi2: dict  # image name (mean, clean, zero, multiscale) -> χ² per coordinate on the held-out data


@dataclass(frozen=True)
class Fit(Config):
    chi2_raw_visibilities: float  # the mean against the file's own visibilities, no gains
    chi2_after_gains: Optional[float]  # the same against the calibrated data (None without gains)
    chi2_per_coordinate: float  # the mean against the data as imaged
    chi2_clean_components: float
    chi2_samples_mean: float
    chi2_samples_std: float
    n_vis_chi2: int
    chi2_gridded_cells: float
    chi2_multiscale_components: Optional[float] = None
    total_flux_multiscale_jy: Optional[float] = None
    holdout: Optional[Holdout] = None


@dataclass(frozen=True)
class ClosureFit(Config):
    """Closure-phase and log-closure-amplitude χ² (S/N ≥ 3, ``ddrm.radio.closure``) of the mean and of CLEAN's
    components (of the uncalibrated data, and of the calibrated data where self-calibrated); None where not
    computed."""

    n_closure_phases: int
    n_log_closure_amplitudes: int
    chi2_cphase_mean: Optional[float]
    chi2_logcamp_mean: Optional[float]
    chi2_cphase_clean: Optional[float]
    chi2_logcamp_clean: Optional[float]
    chi2_cphase_clean_selfcal: Optional[float] = None
    chi2_logcamp_clean_selfcal: Optional[float] = None
    chi2_pooled_samples_median: Optional[float] = None  # the median over the posterior samples of their pooled χ²

    @property
    def pooled(self) -> float:
        """χ² per closure of the mean, phases and log amplitudes pooled by their counts; NaN without any."""
        return pooled(self.n_closure_phases, self.chi2_cphase_mean, self.n_log_closure_amplitudes,
                      self.chi2_logcamp_mean)

    @property
    def mixed_modes(self) -> bool:
        """The samples fit the closures and their mean does not (pooled χ², median sample ≤ ``FITTED_CHI2`` <
        the mean's): the samples sit in different modes, and their mean is none of them."""
        m = self.chi2_pooled_samples_median
        return m is not None and m <= FITTED_CHI2 < self.pooled

    def warning(self) -> Optional[str]:
        """One line for the user where ``mixed_modes``; None otherwise."""
        if not self.mixed_modes:
            return None
        return (f"the posterior samples fit the closures (median pooled chi2 {self.chi2_pooled_samples_median:.2f}) "
                f"but their mean does not ({self.pooled:.2f}): the samples sit in different modes; read the samples "
                "(the SAMPLES extension of image.fits), not the mean")


@dataclass(frozen=True)
class SelfCal(Config):
    applied: str
    reason: str
    trace: Optional[dict] = None  # ``SelfCalTrace.summary``: the config, the rounds, convergence
    chi2_before: Optional[float] = None  # the mean against the uncalibrated data


@dataclass(frozen=True)
class Beam(Config):
    major: str
    minor: str
    position_angle_deg: float


@dataclass(frozen=True)
class Images(Config):
    """The products' URLs (None: not written) and the figures people read off them (Jy/beam)."""

    fits: Optional[str]
    png: Optional[str]
    diagnostics: Optional[str]
    gains: Optional[str]
    image: Optional[str]
    beam: Beam
    peak_jy_per_beam: float
    peak_clean_jy_per_beam: float
    residual_rms_jy_per_beam: float


@dataclass(frozen=True)
class Timings(Config):
    seconds_sampling: float
    seconds: float


@dataclass(frozen=True)
class Provenance(Config):
    run_key: str
    prior: str
    prior_sha256: str
    algorithm: int


@dataclass(frozen=True)
class ImagingProduct(Config):
    observation: Observation
    field: Field
    data_term: DataTerm
    posterior: Posterior
    fit: Fit
    closures: ClosureFit
    selfcal: SelfCal
    images: Images
    timings: Timings
    provenance: Provenance
    predictive: Optional[dict] = None  # ``imager.predictive``: z statistics per kind of held-out datum
    products: dict = field(default_factory=dict)  # file name -> {"bytes", "sha256"} (``stores.products``)
    schema_version: int = SCHEMA_VERSION

    @property
    def file(self) -> str:
        return self.observation.file


@dataclass(frozen=True)
class Skipped:
    """A file that was not imaged: its URL, the reason, and ``fatal`` "output" or "settings" where the run
    itself cannot go on (``imager.file.image_or_skip``)."""

    file: str
    error: str
    fatal: Optional[str] = None

    def record(self) -> dict[str, str]:
        """{"file", "error"}: how run.json and the command line list it."""
        return {"file": self.file, "error": self.error}


@dataclass(frozen=True)
class Outcome:
    """A product and whether it was reused (a finished identical result) or imaged now."""

    product: ImagingProduct
    reused: bool = False

    @property
    def file(self) -> str:
        return self.product.file

    def line(self) -> dict[str, Any]:
        """The command line's one JSON line per file."""
        p = self.product
        warning = p.closures.warning()
        return {"file": p.file, "fits": p.images.fits, "png": p.images.png, "total_flux_jy": p.posterior.total_flux_jy,
                "total_flux_clean_jy": p.posterior.total_flux_clean_jy,
                "chi2_raw_visibilities": p.fit.chi2_raw_visibilities, "chi2_per_coordinate": p.fit.chi2_per_coordinate,
                "closure_chi2_mean": _digits(p.closures.pooled),
                "closure_chi2_samples_median": p.closures.chi2_pooled_samples_median,
                "seconds": p.timings.seconds, "reused": self.reused, **({"warning": warning} if warning else {})}


def _digits(value: float) -> Optional[float]:
    """A number to the summary's ``SUMMARY_DIGITS``; None where not finite (no closure)."""
    return rounded(value, SUMMARY_DIGITS) if math.isfinite(value) else None


def table_row(p: ImagingProduct) -> dict[str, Any]:
    """One row of the run's summary table (the Prefect artifact)."""
    held = p.fit.holdout.chi2 if p.fit.holdout is not None else {}
    return {"file": p.file, "source": p.observation.source, "telescope": p.observation.telescope,
            "n_vis": p.observation.n_vis, "n_flagged": p.observation.n_flagged,
            "pixel_scale_arcsec": p.field.pixel_scale_arcsec, "sigma_jy_weights": p.posterior.sigma_jy_weights,
            "sigma_jy_scatter": p.posterior.sigma_jy_scatter, "flux_scale_jy_per_pixel": p.posterior.flux_scale_jy_per_pixel,
            "total_flux_jy": p.posterior.total_flux_jy, "total_flux_clean_jy": p.posterior.total_flux_clean_jy,
            "chi2_raw_visibilities": p.fit.chi2_raw_visibilities, "chi2_per_coordinate": p.fit.chi2_per_coordinate,
            "chi2_clean_components": p.fit.chi2_clean_components, "chi2_holdout_mean": held.get("mean"),
            "chi2_holdout_clean": held.get("clean"), "closure_chi2_mean": _digits(p.closures.pooled),
            "closure_chi2_samples_median": p.closures.chi2_pooled_samples_median, "warning": p.closures.warning() or "",
            "seconds": p.timings.seconds}

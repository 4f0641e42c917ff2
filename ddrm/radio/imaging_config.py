"""How a field is imaged, as one nested frozen config: the grid, the sampler, the data term, the
self-calibration and CLEAN (``ImagingConfig``). Each setting is defined once here, with its help; the
command line's options and defaults are derived from these fields (``ddrm.config.option``: the option's name,
how its text is parsed, its help), and ``ddrm.config`` round-trips the whole through JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional

from ddrm.config import Config, option
from ddrm.inverse.samplers import DDRMConfig, SamplerConfig
from ddrm.radio.baselines import CleanConfig
from ddrm.radio.exact_gibbs import ExactRefineConfig
from ddrm.radio.gridding import DEFAULT_FIT_FRACTION, WEIGHTINGS
from ddrm.radio.phase_stability import DATA_TERMS
from ddrm.radio.selfcal import SelfCalConfig

NOISE_SOURCES = ("weights", "scatter")
LIKELIHOODS = ("exact", "gridded")  # the visibilities at their own (u, v), or the nearest-cell grid alone
ROBUST_RANGE = (-2.0, 2.0)  # Briggs robustness, as in CASA (-2: near uniform, 2: near natural)
DEFAULT_FIELD_FRACTIONS = (1.0, 0.5, 0.25)  # candidate pixel scales, as fractions of the Nyquist-fitted one
CLOSURE_FIELD_FRACTIONS = (0.5, 0.25, 0.125)  # the closures' ladder: sparse VLBI sees compact sources
MIN_FIELD_FRACTION = 1 / 16  # finer rungs would oversample the beam past ``gridding.MAX_OVERSAMPLING``
DEFAULT_SAMPLER = DDRMConfig(data_step=True)  # with σ_y that small the paper's last step would drop the data


def check_field_fractions(values) -> tuple[float, ...]:
    """The field ladder as a tuple (a list from JSON or the command line); ValueError unless its entries are
    distinct numbers in [``MIN_FIELD_FRACTION``, 1]."""
    values = tuple(values)
    if not values or not all(isinstance(f, (int, float)) and MIN_FIELD_FRACTION <= f <= 1 for f in values) \
            or len(set(values)) != len(values):
        raise ValueError(f"field_fractions must be distinct numbers in [1/{round(1 / MIN_FIELD_FRACTION)}, 1], "
                         f"got {values}")
    return values


@dataclass(frozen=True)
class GridConfig(Config):
    """N×N pixels of ``pixel_scale_arcsec`` (None: chosen from the data: the longest baseline at
    ``fit_fraction`` of Nyquist gives s₀, and each s₀·f for f in ``field_fractions`` is a candidate,
    None: ``fractions_for`` the data term); the imaging ``weighting`` (with Briggs ``robust``)."""

    N: int = option(150, help="image size in pixels", parse="positive_int")
    pixel_scale_arcsec: Optional[float] = option(
        help="e.g. 1.8arcsec, 0.5mas, 20uas (default: from the data, see --field-fractions)", name="pixel_scale",
        parse="angle")
    fit_fraction: float = DEFAULT_FIT_FRACTION
    field_fractions: Optional[tuple[float, ...]] = option(
        help="without --pixel-scale: candidate pixel scales as fractions of the one that puts the longest baseline "
             f"near Nyquist (default {','.join(f'{f:g}' for f in DEFAULT_FIELD_FRACTIONS)}, "
             f"{','.join(f'{f:g}' for f in CLOSURE_FIELD_FRACTIONS)} with --data closures); each is imaged from all "
             "but a fifth of the scans, and the one whose posterior mean fits the held-out scans' closure phases "
             "and amplitudes best is imaged from all the data. One value: that scale, no search", parse="fractions")
    weighting: str = option("natural", help="imaging weights", choices=WEIGHTINGS)
    robust: float = option(0.0, help="Briggs robustness R in [-2, 2]", parse="number")

    def __post_init__(self) -> None:
        if self.N < 16:
            raise ValueError(f"N must be >= 16, got {self.N}")
        if self.pixel_scale_arcsec is not None and not self.pixel_scale_arcsec > 0:
            raise ValueError("pixel_scale_arcsec must be positive")
        if not 0 < self.fit_fraction <= 1:
            raise ValueError(f"fit_fraction must lie in (0, 1], got {self.fit_fraction}")
        if self.field_fractions is not None:
            object.__setattr__(self, "field_fractions", check_field_fractions(self.field_fractions))
        if not (isinstance(self.robust, (int, float)) and ROBUST_RANGE[0] <= self.robust <= ROBUST_RANGE[1]):
            raise ValueError(f"robust must lie in [{ROBUST_RANGE[0]:g}, {ROBUST_RANGE[1]:g}] (Briggs, as in CASA), "
                             f"got {self.robust}")
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {self.weighting!r}")

    def fractions_for(self, term: str) -> tuple[float, ...]:
        """The field ladder: the user's, else ``CLOSURE_FIELD_FRACTIONS`` for the closures' data term and
        ``DEFAULT_FIELD_FRACTIONS`` for the visibilities'."""
        if self.field_fractions is not None:
            return self.field_fractions
        return CLOSURE_FIELD_FRACTIONS if term == "closures" else DEFAULT_FIELD_FRACTIONS


@dataclass(frozen=True)
class SamplingConfig(Config):
    """S = ``samples`` posterior samples with K steps of ``sampler`` on the gridded operator; σ from the data
    ``weights`` or their in-cell ``scatter``."""

    sampler: SamplerConfig = option(DEFAULT_SAMPLER, help="sampler by name (ddrm: with its final data step)",
                                    parse="sampler")
    K: int = option(50, help="diffusion steps K", parse="positive_int")
    samples: int = option(16, help="posterior samples S: the mean, std and significance maps", parse="positive_int")
    noise: str = option("weights", help="thermal σ (Jy) from the data weights or from the scatter within uv cells",
                        choices=NOISE_SOURCES)

    def __post_init__(self) -> None:
        if self.K < 1 or self.samples < 1:
            raise ValueError("K and samples must be >= 1")
        if self.noise not in NOISE_SOURCES:
            raise ValueError(f"noise must be one of {NOISE_SOURCES}, got {self.noise!r}")


@dataclass(frozen=True)
class ClosureImagingConfig(Config):
    """Split-Gibbs ``iterations`` sweeps from ρ = ``rho_max`` to ``rho_min`` under the closure likelihood, each
    x | z step ``lbfgs`` L-BFGS iterations; closures of S/N ≥ ``snr_cut`` (0: every closure the data form, as
    ehtim's imager takes them, each weighted by its 1/σ²; at S/N ≥ 3 the EHT 2017 M87 files keep 30 of their
    2161 log closure amplitudes and the amplitudes' structure with them); the total flux's σ as a fraction
    ``flux_sigma`` of it (small: the prior's many pixels would otherwise outvote the one flux datum, and the
    flux drifts to the prior's); the centroid's σ in pixels; ``start`` "rml", "gaussian" or "posterior"
    (``closure_imaging``)."""

    rho_max: float = 0.3
    rho_min: float = 0.01
    iterations: int = 16
    lbfgs: int = 40
    snr_cut: float = 0.0
    flux_sigma: float = 0.003
    centroid_sigma: float = 1.0
    start: str = "rml"

    def __post_init__(self) -> None:
        ExactRefineConfig(self.rho_max, self.rho_min, self.iterations, None)  # validates the schedule
        if self.start not in ("gaussian", "posterior", "rml"):
            raise ValueError(f"start must be 'gaussian', 'posterior' or 'rml', got {self.start!r}")
        if self.lbfgs < 1 or self.snr_cut < 0 or not self.flux_sigma > 0:
            raise ValueError(f"need lbfgs >= 1, snr_cut >= 0 and flux_sigma > 0, got {self}")


@dataclass(frozen=True)
class DataTermConfig(Config):
    """What the posterior answers to: ``data`` "visibilities", "closures" (closure phases and log closure
    amplitudes, which no station gain corrupts: ``closure_imaging`` with ``closure``) or "auto" (closures where
    the station phases wander faster than an integration: ``phase_stability``); for the visibilities,
    ``likelihood`` "exact" (the split-Gibbs sweeps of ``exact`` under the visibilities at their own (u, v)) or
    "gridded" (the nearest-cell grid alone); ``total_flux`` (Jy) fixes the closure posterior's flux (None:
    the shortest baselines', else CLEAN's)."""

    data: str = option("auto", help="the posterior's data term: visibilities, closures (closure phases and log "
                                    "closure amplitudes, which station gains cannot corrupt; the gains are solved "
                                    "afterwards against the image), or auto (closures where the station phases "
                                    "wander between integrations faster than their thermal noise)",
                       choices=("auto",) + DATA_TERMS)
    likelihood: str = option("exact", help="exact: the posterior fits the visibilities at their own (u, v); "
                                           "gridded: the nearest-cell grid alone (faster, fits the visibilities "
                                           "worse)", choices=LIKELIHOODS)
    exact: ExactRefineConfig = field(default_factory=ExactRefineConfig)
    closure: ClosureImagingConfig = field(default_factory=ClosureImagingConfig)
    total_flux: Optional[float] = option(help="total flux (Jy) of the closure posterior (default: the shortest "
                                              "baselines' amplitude, else CLEAN's)", parse="positive_float")

    def __post_init__(self) -> None:
        if self.data not in ("auto",) + DATA_TERMS:
            raise ValueError(f"data must be one of {('auto',) + DATA_TERMS}, got {self.data!r}")
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {self.likelihood!r}")
        if self.total_flux is not None and not (isinstance(self.total_flux, (int, float)) and
                                                0 < self.total_flux < float("inf")):
            raise ValueError(f"total_flux must be a positive number of Jy, got {self.total_flux!r}")

    @property
    def refine(self) -> Optional[ExactRefineConfig]:
        """The exact sweeps, or None for the gridded likelihood."""
        return self.exact if self.likelihood == "exact" else None


def _selfcal_default() -> SelfCalConfig:
    return SelfCalConfig(mode="auto")


@dataclass(frozen=True)
class ImagingConfig(Config):
    """The grid, the sampler, the data term, the self-calibration (``mode`` "auto": decided from the data by
    the imaging, ``imager.terms``) and CLEAN of one imaging."""

    grid: GridConfig = field(default_factory=GridConfig)
    sampler: SamplingConfig = field(default_factory=SamplingConfig)
    likelihood: DataTermConfig = field(default_factory=DataTermConfig)
    selfcal: SelfCalConfig = field(default_factory=_selfcal_default)
    clean: CleanConfig = field(default_factory=CleanConfig)

    def __post_init__(self) -> None:
        if self.selfcal.draw and (self.likelihood.likelihood != "exact" or self.selfcal.mode == "none"):
            raise ValueError("selfcal gains 'draw' draws the gains inside the exact likelihood's sweeps: it needs "
                             "likelihood 'exact' and a self-calibration (got likelihood "
                             f"{self.likelihood.likelihood!r}, selfcal {self.selfcal.mode!r})")

    @property
    def N(self) -> int:
        return self.grid.N

    @property
    def pixel_scale_arcsec(self) -> float:
        """The grid's pixel scale; ValueError where it is still to be chosen from the data."""
        if self.grid.pixel_scale_arcsec is None:
            raise ValueError("the pixel scale is chosen from the data first (ImagingConfig.at_scale)")
        return self.grid.pixel_scale_arcsec

    def at_scale(self, pixel_scale_arcsec: float) -> "ImagingConfig":
        """The same config at one pixel scale (arcsec)."""
        return replace(self, grid=replace(self.grid, pixel_scale_arcsec=pixel_scale_arcsec))

    def selfcal_as(self, mode: str) -> SelfCalConfig:
        """The self-calibration with ``mode`` decided (the "auto" of the config resolved by the caller)."""
        return replace(self.selfcal, mode=mode)

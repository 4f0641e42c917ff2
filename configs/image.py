"""Imaging real observations (``radio-ddrm image``): one frozen config, validated where it is built."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional, Union

from astropy import units as u

from ddrm.baselines import CleanConfig
from ddrm.closure_imaging import ClosureImagingConfig
from ddrm.exact_gibbs import ExactRefineConfig
from ddrm.interferometry.phase_stability import DATA_TERMS
from ddrm.interferometry.gridding import DEFAULT_FIT_FRACTION, WEIGHTINGS
from ddrm.samplers import DDRMConfig
from ddrm.samplers import SamplerConfig
from ddrm.selfcal import SELFCAL_MODES, SelfCalConfig

SELFCAL_GAINS = ("mode", "draw")

NOISE_SOURCES = ("weights", "scatter")
LIKELIHOODS = ("exact", "gridded")  # the visibilities at their own (u, v), or the nearest-cell grid alone
ROBUST_RANGE = (-2.0, 2.0)  # Briggs robustness, as in CASA (-2: near uniform, 2: near natural)
DEFAULT_FIELD_FRACTIONS = (1.0, 0.5, 0.25)  # candidate pixel scales, as fractions of the Nyquist-fitted one
CLOSURE_FIELD_FRACTIONS = (0.5, 0.25, 0.125)  # the closures' ladder: sparse VLBI sees compact sources
MIN_FIELD_FRACTION = 1 / 16  # finer rungs would oversample the beam past ``gridding.MAX_OVERSAMPLING``


class ImagingSettingsError(ValueError):
    """Settings that do not suit a file's data (a pixel scale finer than its baselines support): a fault of the
    run, not of the file, so it stops the run (exit 2) instead of being skipped."""
DEFAULT_SAMPLER = DDRMConfig(data_step=True)  # with σ_y that small the paper's last step would drop the data


def image_sampler(name: str) -> SamplerConfig:
    """The imaging stage's sampler of a registered name: its defaults, with DDRM's final data step on."""
    from ddrm.samplers import config_for

    return DEFAULT_SAMPLER if name == DEFAULT_SAMPLER.name else config_for(name)


def parse_angle_arcsec(text: str) -> float:
    """'1.8arcsec', '0.5 mas', '20uas' or a bare number (arcsec) -> arcsec; ValueError otherwise."""
    try:
        q = u.Quantity(text)
        value = float(q.to_value(u.arcsec)) if q.unit != u.dimensionless_unscaled else float(q.value)
    except (TypeError, ValueError, u.UnitConversionError) as err:
        raise ValueError(f"not an angle: {text!r} ({err})") from None
    if not value > 0:
        raise ValueError(f"the pixel scale must be positive, got {text!r}")
    return value


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
class ImageConfig:
    """N×N images of each file at ``pixel_scale_arcsec`` (None: chosen from the data: the longest baseline at
    ``fit_fraction`` of Nyquist gives the scale s₀, the file is imaged at each s₀·f for f in ``field_fractions``
    (None: ``fractions_for`` the data term) and the scale whose posterior mean fits held-out closures best is
    kept: ``tasks.image_scale``);
    ``weighting`` (natural, uniform, briggs with ``robust``) sets the operator's singular values;
    σ from the data ``weights`` or their in-cell ``scatter``; ``sampler`` draws S samples with K steps
    (``image_sampler``) on the gridded operator; ``likelihood`` "exact" then refines them under the
    visibilities at their own (u, v) (``exact``: ``ddrm.exact_gibbs``), "gridded" keeps them; ``holdout``
    F > 0 images from all but a seeded fraction F of (baseline × scan) blocks and scores on those;
    ``selfcal`` none / phase / amp-phase, or "auto": phase for VLBI (a baseline over 200 km), none otherwise,
    with gains per ``solint`` ("scan" or seconds) and a log-amplitude prior σ ``amp_sigma`` (``ddrm.selfcal``);
    ``selfcal_gains`` "mode" (one solution for every sample) or "draw" (each sample's gains drawn from their
    posterior, so the std includes them: ``ddrm.selfcal_chain``); ``data`` the posterior's data term:
    "visibilities", "closures" (closure phases and log closure amplitudes, which no station gain corrupts:
    ``ddrm.closure_imaging`` with ``closure``; the gains are solved afterwards against its mean) or "auto"
    (closures where the station phases wander faster than a solution interval:
    ``interferometry.phase_stability``); ``total_flux`` (Jy) fixes the closure posterior's flux (None: the
    shortest baselines', else CLEAN's)."""

    N: int = 150
    pixel_scale_arcsec: Optional[float] = None
    fit_fraction: float = DEFAULT_FIT_FRACTION
    field_fractions: Optional[tuple[float, ...]] = None
    weighting: str = "natural"
    robust: float = 0.0
    prior: str = "first"
    sampler: SamplerConfig = DEFAULT_SAMPLER
    K: int = 50
    samples: int = 16
    noise: str = "weights"
    seed: int = 0
    clean: CleanConfig = field(default_factory=CleanConfig)
    likelihood: str = "exact"
    exact: ExactRefineConfig = field(default_factory=ExactRefineConfig)
    holdout: float = 0.0
    selfcal: str = "auto"
    solint: Union[str, float] = "scan"
    amp_sigma: float = 0.1
    selfcal_gains: str = "mode"
    data: str = "auto"
    total_flux: Optional[float] = None
    closure: ClosureImagingConfig = field(default_factory=ClosureImagingConfig)
    strict: bool = False

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
        if not (isinstance(self.holdout, (int, float)) and 0 <= self.holdout <= 0.5):
            raise ValueError(f"holdout must lie in [0, 0.5] (a fraction of the visibilities), got {self.holdout}")
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {self.likelihood!r}")
        if self.noise not in NOISE_SOURCES:
            raise ValueError(f"noise must be one of {NOISE_SOURCES}, got {self.noise!r}")
        if self.K < 1 or self.samples < 1:
            raise ValueError("K and samples must be >= 1")
        if self.selfcal not in ("auto",) + SELFCAL_MODES:
            raise ValueError(f"selfcal must be one of {('auto',) + SELFCAL_MODES}, got {self.selfcal!r}")
        SelfCalConfig(solint=self.solint, amp_sigma=self.amp_sigma)  # validates both
        if self.selfcal_gains not in SELFCAL_GAINS:
            raise ValueError(f"selfcal_gains must be one of {SELFCAL_GAINS}, got {self.selfcal_gains!r}")
        if self.data not in ("auto",) + DATA_TERMS:
            raise ValueError(f"data must be one of {('auto',) + DATA_TERMS}, got {self.data!r}")
        if self.total_flux is not None and not (isinstance(self.total_flux, (int, float)) and
                                                0 < self.total_flux < float("inf")):
            raise ValueError(f"total_flux must be a positive number of Jy, got {self.total_flux!r}")
        if isinstance(self.closure, dict):
            object.__setattr__(self, "closure", ClosureImagingConfig(**self.closure))
        if self.selfcal_gains == "draw" and (self.likelihood != "exact" or self.selfcal == "none"):
            raise ValueError("selfcal_gains 'draw' draws the gains inside the exact likelihood's sweeps: it needs "
                             "likelihood 'exact' and a self-calibration (got likelihood "
                             f"{self.likelihood!r}, selfcal {self.selfcal!r})")

    def fractions_for(self, term: str) -> tuple[float, ...]:
        """The field ladder: the user's, else ``CLOSURE_FIELD_FRACTIONS`` for the closures' data term and
        ``DEFAULT_FIELD_FRACTIONS`` for the visibilities'."""
        if self.field_fractions is not None:
            return self.field_fractions
        return CLOSURE_FIELD_FRACTIONS if term == "closures" else DEFAULT_FIELD_FRACTIONS

    def selfcal_for(self, vlbi: bool) -> tuple[Optional[SelfCalConfig], str, str]:
        """(the config, the mode applied, why) for a file that is VLBI or not, by the array ("auto" as the
        imaging decides it from the data instead: ``tasks.image_terms``)."""
        mode = ("phase" if vlbi else "none") if self.selfcal == "auto" else self.selfcal
        reason = (f"auto: {'VLBI' if vlbi else 'connected-element'} file (longest baseline "
                  f"{'over' if vlbi else 'under'} 200 km)") if self.selfcal == "auto" else "set by the user"
        config = None if mode == "none" else SelfCalConfig(mode=mode, solint=self.solint, amp_sigma=self.amp_sigma,
                                                           draw=self.selfcal_gains == "draw")
        return config, mode, reason

    def to_dict(self) -> dict:
        return {**{k: v for k, v in asdict(self).items() if k != "sampler"}, "sampler": self.sampler.to_dict()}

"""Imaging real observations (``radio-ddrm image``): one frozen nested config, validated where it is built,
that round-trips through JSON (``ddrm.config``) and from which the command line's options are derived."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

from astropy import units as u

from ddrm.config import option, with_options
from ddrm.inverse.samplers import SamplerConfig
from ddrm.radio.imaging_config import DEFAULT_SAMPLER, ImagingConfig


class ImagingSettingsError(ValueError):
    """Settings that do not suit a file's data (a pixel scale finer than its baselines support): a fault of the
    run, not of the file, so it stops the run (exit 2) instead of being skipped."""


def image_sampler(name: str) -> SamplerConfig:
    """The imaging stage's sampler of a registered name: its defaults, with DDRM's final data step on."""
    from ddrm.inverse.samplers import config_for

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


@dataclass(frozen=True)
class ImageConfig(ImagingConfig):
    """The imaging of every file (``ImagingConfig``: grid, sampler, data term, self-calibration, CLEAN) with
    the ``prior``, the ``seed`` (with each input's SHA256: ``imager.file``), a ``holdout`` fraction F > 0 of
    (baseline × scan) blocks imaged without and scored on, and ``strict`` (a bad file fails the run instead of
    being skipped; it changes no product). ``of(**options)``: the defaults with options set by their names
    (the command line's: ``ddrm.config.with_options``)."""

    prior: str = option("first", help="packaged prior name or checkpoint URL")
    seed: int = 0
    holdout: float = option(0.0, parse="number",
                            help="hold out this fraction of the data in whole (baseline x scan) blocks, image from "
                                 "the rest, and report the held-out chi2 of the mean, CLEAN and the zero image, and "
                                 "the posterior predictive check of the error bars with a recalibrated std map")
    strict: bool = option(False, help="fail on a bad file instead of skipping it")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (isinstance(self.holdout, (int, float)) and 0 <= self.holdout <= 0.5):
            raise ValueError(f"holdout must lie in [0, 0.5] (a fraction of the visibilities), got {self.holdout}")

    @classmethod
    def of(cls, **given: Any) -> "ImageConfig":
        return with_options(cls(), given)


SECTIONS = ("grid", "sampler", "likelihood", "selfcal", "clean")


def image_config(config: Union["ImageConfig", dict, None]) -> "ImageConfig":
    """An ``ImageConfig`` from itself, its JSON (``to_dict``'s nested form) or options by name (``of``: what a
    deployment's parameters carry, e.g. {"N": 64, "K": 10}); None: the defaults."""
    if config is None:
        return ImageConfig()
    if isinstance(config, ImageConfig):
        return config
    if any(isinstance(config.get(s), dict) for s in SECTIONS):  # "selfcal": "none" is an option, not a section
        return ImageConfig.from_dict(config)
    return ImageConfig.of(**config)

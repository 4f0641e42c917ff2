"""Command-line options derived from a config's fields (``ddrm.config.option``), and the argument types of the
command line: each option's flag, parser, choices, help and default come from the field that defines it."""

from __future__ import annotations

import argparse
import dataclasses
import math
from typing import Any, Callable

from ddrm.config import option_name, options


def _parsed(text: str, convert, what: str):
    try:
        return convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from None


def positive_int(text: str) -> int:
    value = _parsed(text, int, "an integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative(text: str) -> float:
    value = _parsed(text, float, "a number")
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def positive_float(text: str) -> float:
    value = _parsed(text, float, "a number")
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def number(text: str) -> float:
    return _parsed(text, float, "a number")


def fractions(text: str) -> tuple[float, ...]:
    """'1,0.5,0.25' -> (1.0, 0.5, 0.25), checked as the config checks it
    (``ddrm.radio.imaging_config.check_field_fractions``)."""
    from ddrm.radio.imaging_config import check_field_fractions

    try:
        return check_field_fractions(float(t) for t in text.split(","))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{err} (from {text!r}: numbers separated by commas)") from None


def solint(text: str):
    """'scan', 'inf' or a number of seconds, at least ``gains.MIN_SOLINT_S`` (checked as the config checks it)."""
    from ddrm.radio.gains import GainConfig

    if text == "scan":
        return text
    try:
        value = float(text)
        GainConfig(solint=value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err) if "solint" in str(err) else
                                         f"solint must be 'scan', 'inf' or seconds, got {text!r}") from None
    return value


def angle(text: str) -> float:
    """An angle with its unit (``configs.image.parse_angle_arcsec``) -> arcsec."""
    from configs.image import parse_angle_arcsec

    try:
        return parse_angle_arcsec(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def sampler(text: str):
    """A registered sampler's name -> the imaging stage's config of it (``configs.image.image_sampler``)."""
    from configs.image import image_sampler

    try:
        return image_sampler(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


PARSERS: dict[str, Callable[[str], Any]] = {
    "positive_int": positive_int, "positive_float": positive_float, "non_negative": non_negative, "number": number,
    "fractions": fractions, "solint": solint, "angle": angle, "sampler": sampler}


def _default_text(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return ""
    if dataclasses.is_dataclass(value):
        return f" (default {getattr(value, 'name', type(value).__name__)})"
    if isinstance(value, float):
        return f" (default {value:g})"
    return f" (default {value})"


def _default(config: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        config = getattr(config, key)
    return config


def add_config_options(parser: argparse.ArgumentParser, defaults: Any) -> None:
    """One option per ``option`` field of ``defaults``' class (nested configs included), its help ending with
    the default ``defaults`` holds; an option not given stays None, so the config's own default applies."""
    for path, f, hint in options(type(defaults)):
        name = option_name(path, f)
        flag = "--" + name.replace("_", "-")
        meta = f.metadata
        if hint is bool:
            parser.add_argument(flag, dest=name, action="store_true", default=None, help=meta["help"])
            continue
        kwargs = {"type": PARSERS[meta["parse"]]} if meta.get("parse") else {}
        if meta.get("choices"):
            kwargs["choices"] = meta["choices"]
        parser.add_argument(flag, dest=name, help=meta["help"] + _default_text(_default(defaults, path)), **kwargs)


def given_options(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The options of ``cls`` that the command line gave, by name (``ddrm.config.with_options``' form)."""
    names = [option_name(path, f) for path, f, _ in options(cls)]
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}

"""What every stage config shares: the content hash, name checks and preset lookup."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from typing import Any

SPLITS = ("train", "val", "test")
FIRST_PIXEL_SCALE_ARCSEC = 1.8  # FIRST cutouts; also the synthetic default


def stable_hash(payload: Any, length: int = 12) -> str:
    """sha256 of canonical JSON (sorted keys), truncated: equal configs give equal hashes everywhere."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def check_name(name: str) -> None:
    """Names become folder names: non-empty, one path component."""
    if not name or "/" in name:
        raise ValueError(f"name must be a non-empty path component, got {name!r}")


def from_preset(table: dict, kind: str, preset: str, overrides: dict[str, Any]):
    if preset not in table:
        raise ValueError(f"unknown {kind} preset {preset!r}; choose one of {sorted(table)}")
    try:
        return replace(table[preset], **overrides)
    except TypeError as err:
        raise ValueError(str(err)) from None


def resolve(config: Any, presets: dict, kind: str):
    """A config, or the name of one of ``presets`` (deployments pass preset names)."""
    return from_preset(presets, kind, config, {}) if isinstance(config, str) else config

PACKAGED_PRIORS = ("first",)  # priors shipped with the package (stores.packaged reads them; tests check each)

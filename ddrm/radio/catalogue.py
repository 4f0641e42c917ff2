"""The array catalogue, defined once: every array a survey can name, and how to observe with it.

An entry is either an Earth-rotation observation preset (a packaged station layout observed at
a frequency, a field and an hour-angle range; uv-coverage computed at any N, pixel scale fitted
to the grid unless fixed) or a *mask-only* array: the reference paper's 150×150 uv masks, which
carry no physical pixel scale. Per-observation seeds derive from the entry's *name*, so adding
an entry never changes another's noise.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

from ddrm.radio.coverage import ObservationConfig


@dataclass(frozen=True)
class ArraySpec:
    """One catalogue entry: ``observation`` (Earth-rotation) or ``mask_file`` (mask-only, fixed N)."""

    name: str
    description: str
    observation: Optional[ObservationConfig] = None
    mask_file: Optional[str] = None
    mask_N: Optional[int] = None

    def __post_init__(self) -> None:
        if (self.observation is None) == (self.mask_file is None):
            raise ValueError(f"array {self.name!r} needs exactly one of an observation or a mask file")

    @property
    def mask_only(self) -> bool:
        return self.mask_file is not None


_ENTRIES = (
    ArraySpec("vla", "VLA B configuration at 1.4 GHz, like FIRST, a 1 h track of a FIRST-like field at δ = +30°",
              ObservationConfig("vla_b", 1.4e9, 150.0, 30.0, -0.5, 0.5, 30.0, min_elevation_deg=8.0)),
    ArraySpec("eht", "EHT 2017 at 230 GHz on M87, 12 h around transit at the array's centroid, 10° limit",
              ObservationConfig("eht2017", 230e9, 187.7059, 12.3911, -6.0, 6.0, 60.0, min_elevation_deg=10.0)),
    ArraySpec("alma", "ALMA Cycle 12 C-5 (mid) at 230 GHz (Band 6), 1 h around transit",
              ObservationConfig("alma_c5", 230e9, 83.8221, -27.0, -0.5, 0.5, 30.0, min_elevation_deg=15.0)),
    ArraySpec("paper-vla", "the reference paper's VLA uv mask (150×150, no pixel scale)",
              mask_file="VLA_mask_150.npy", mask_N=150),
    ArraySpec("paper-eht", "the reference paper's EHT uv mask (150×150, no pixel scale)",
              mask_file="EHT_mask_150.npy", mask_N=150),
    ArraySpec("paper-alma", "the reference paper's ALMA uv mask (150×150, no pixel scale)",
              mask_file="ALMA_mask_150.npy", mask_N=150),
)
ARRAYS: dict[str, ArraySpec] = {a.name: a for a in _ENTRIES}
OBSERVATION_PRESETS: dict[str, ObservationConfig] = {a.name: a.observation for a in _ENTRIES if a.observation}


def array_names() -> tuple[str, ...]:
    return tuple(ARRAYS)


def array_spec(name: str) -> ArraySpec:
    if name not in ARRAYS:
        raise ValueError(f"unknown array {name!r}; known: {', '.join(ARRAYS)}")
    return ARRAYS[name]


def observation_preset(name: str, **overrides) -> ObservationConfig:
    """The Earth-rotation preset of array ``name`` with any field overridden."""
    if name not in OBSERVATION_PRESETS:
        raise ValueError(f"unknown observation preset {name!r}; known: {', '.join(sorted(OBSERVATION_PRESETS))}")
    return replace(OBSERVATION_PRESETS[name], **overrides)

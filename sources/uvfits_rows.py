"""Checks of a uvfits file's rows and header values, before anything is gridded.

Antennas: AIPS encodes a row's baseline as BASELINE = 256 a₁ + a₂ (+ 0.01 (subarray - 1)), or, for
antenna numbers over 255, 2048 a₁ + a₂ + 65536. A row's antennas must be listed in the AIPS AN table's
NOSTA column, or, without a table, lie in 0..``MAX_ANTENNA_NO_TABLE`` (255, the 256 code's own bound; 2047
for the 2048 code). A row that breaks this, or whose BASELINE is not finite, is flagged (``bad_antennas``).
A row with a₁ = a₂ is an autocorrelation |V|² of one station, not a visibility of the sky: it is dropped
and counted apart (``autocorrelations``). A row whose time is not finite is flagged too.

Weights are 1/σ² per real coordinate (Jy⁻²). A weight over ``MAX_WEIGHT`` (σ under 1 nJy) or over
``WEIGHT_SPREAD`` times the median weight (σ 10⁴ times below the median's) is unphysical: one such
visibility would outweigh the whole file. Those visibilities are flagged (``bad_weights``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

MAX_ANTENNA_NO_TABLE = 255
MAX_ANTENNA_2048 = 2047
MAX_WEIGHT = 1e18  # Jy⁻²: σ = 1 nJy per real coordinate
WEIGHT_SPREAD = 1e8  # a weight this many times the median (σ 10⁴ times smaller) is not a measurement


@dataclass(frozen=True)
class RowCheck:
    """Per row (n_rows,): antenna1, antenna2 (int64; -1 where unusable); ``bad_antennas``, ``bad_times``,
    ``autocorrelations`` (bool); ``known`` whether the file names its antennas (a BASELINE parameter)."""

    antenna1: np.ndarray
    antenna2: np.ndarray
    bad_antennas: np.ndarray
    bad_times: np.ndarray
    autocorrelations: np.ndarray
    known: bool


def decode_baselines(baseline: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(a₁, a₂, ok) (n,) from AIPS BASELINE codes (module docstring); ok False where the code is not finite
    or negative (a₁ = a₂ = -1 there)."""
    b = np.asarray(baseline, np.float64)
    ok = np.isfinite(b) & (b >= 0) & (b < 2 ** 62)
    code = np.where(ok, np.floor(np.where(ok, b, 0) + 1e-6), 0).astype(np.int64)  # the fraction is the subarray
    big = code > 65536
    a1 = np.where(big, (code - 65536) // 2048, code // 256)
    a2 = np.where(big, (code - 65536) % 2048, code % 256)
    return np.where(ok, a1, -1), np.where(ok, a2, -1), ok


def check_rows(baseline: Optional[np.ndarray], time_jd: np.ndarray, stations: Optional[np.ndarray]) -> RowCheck:
    """The row checks of the module docstring. ``baseline`` None: the file has no BASELINE parameter, so its
    antennas are unknown (every row antenna 0 - 0, nothing dropped as an autocorrelation); ``stations`` the AN
    table's NOSTA (None: no table)."""
    n = len(time_jd)
    bad_times = ~np.isfinite(time_jd)
    if baseline is None:
        zeros = np.zeros(n, np.int64)
        return RowCheck(zeros, zeros.copy(), np.zeros(n, bool), bad_times, np.zeros(n, bool), False)
    a1, a2, ok = decode_baselines(baseline)
    if stations is not None and len(stations):
        listed = np.isin(a1, stations) & np.isin(a2, stations)
    else:
        bound = np.where(np.asarray(baseline, np.float64) > 65536, MAX_ANTENNA_2048, MAX_ANTENNA_NO_TABLE) if n \
            else np.zeros(0)
        listed = (a1 >= 0) & (a2 >= 0) & (a1 <= bound) & (a2 <= bound)
    bad = ~(ok & listed)
    return RowCheck(np.where(bad, -1, a1), np.where(bad, -1, a2), bad, bad_times & ~bad, ~bad & (a1 == a2), True)


def absurd_weights(w: np.ndarray) -> np.ndarray:
    """Bool like ``w``: positive weights over ``MAX_WEIGHT`` or ``WEIGHT_SPREAD`` × the median positive
    weight (module docstring)."""
    positive = w > 0
    if not positive.any():
        return np.zeros(w.shape, bool)
    median = float(np.median(w[positive]))
    return positive & ((w > MAX_WEIGHT) | (w > WEIGHT_SPREAD * median))


def header_position(header, ra_axis: Optional[int], dec_axis: Optional[int]) -> tuple[float, float, tuple[str, ...]]:
    """(RA, Dec) in degrees of the phase centre: OBSRA/OBSDEC, else the RA/DEC axes' CRVAL; with a warning
    where OBSRA or OBSDEC is present but not a number. ValueError naming the keywords if neither is a number."""
    notes: list[str] = []
    out = []
    for key, axis in (("OBSRA", ra_axis), ("OBSDEC", dec_axis)):
        value = _number(header.get(key))
        if value is None and key in header:
            notes.append(f"{key} {str(header[key])[:40]!r} is not a number: the {key[3:]} axis's CRVAL is used")
        if value is None and axis is not None:
            value = _number(header.get(f"CRVAL{axis}"))
        if value is None:
            raise ValueError(f"no numeric phase centre: neither {key} nor the {key[3:]} axis's CRVAL is a number")
        out.append(value)
    return out[0], out[1], tuple(notes)


def _number(value) -> Optional[float]:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None


def header_date(value) -> tuple[str, tuple[str, ...]]:
    """(DATE-OBS as an ISO date, warnings): a value that is not a date (FITS 'YYYY-MM-DD[Thh:mm:ss]' or the
    old 'DD/MM/YY') is dropped with a warning, never copied into products."""
    from astropy.time import Time

    text = str(value or "").strip()
    if not text:
        return "", ()
    try:
        if "/" in text:
            day, month, year = (int(p) for p in text.split("/"))
            text = f"{1900 + year if year < 100 else year:04d}-{month:02d}-{day:02d}"
    except ValueError:
        pass
    for fmt in ("fits", "iso"):
        try:
            Time(text, format=fmt)
            return text, ()
        except (ValueError, TypeError):
            continue
    return "", (f"DATE-OBS {str(value)[:40]!r} is not a date: left out of the products",)

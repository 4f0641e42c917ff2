"""Observation presets and uv-coverage by Earth-rotation synthesis (docs/design.md §3).

For a source at Greenwich hour angle H and declination δ, a baseline b = r_2 - r_1 in
ITRF metres projects to (Thompson, Moran & Swenson eq. 4.1)

    u = ( sin H b_x + cos H b_y) / λ
    v = (-sin δ cos H b_x + sin δ sin H b_y + cos δ b_z) / λ
    w = ( cos δ cos H b_x - cos δ sin H b_y + sin δ b_z) / λ,

a rotation, so |uvw| = |b|/λ. Hour angles are sampled at the integration time over the
preset's range of the *local* hour angle at the array's reference point; astropy gives the
UTC times, the apparent Greenwich sidereal time, the stations' geodetic positions and λ.
A station whose source elevation is below ``min_elevation_deg`` is flagged per time step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
from astropy import constants as const
from astropy import units as u
from astropy.coordinates import EarthLocation
from astropy.time import Time
from astropy.utils import iers

from ddrm.radio.gridding import DEFAULT_FIT_FRACTION, max_projected_baseline
from ddrm.radio.layouts import Layout

SIDEREAL_PER_SOLAR = 1.00273790935


@dataclass(frozen=True)
class ObservationConfig:
    """One observation of one array. Angles in degrees, hour angles in hours, times UTC."""

    layout: str
    freq_hz: float
    ra_deg: float
    dec_deg: float
    ha_start_h: float
    ha_end_h: float
    integration_s: float
    min_elevation_deg: Optional[float] = None
    date: str = "2026-03-21"
    pixel_scale_arcsec: Optional[float] = None  # None: fit the grid to the longest baseline
    fit_fraction: float = DEFAULT_FIT_FRACTION

    def __post_init__(self) -> None:
        if self.freq_hz <= 0 or self.integration_s <= 0:
            raise ValueError("freq_hz and integration_s must be positive")
        if not -90 <= self.dec_deg <= 90:
            raise ValueError(f"dec_deg must lie in [-90, 90], got {self.dec_deg}")
        if not self.ha_end_h > self.ha_start_h or self.ha_end_h - self.ha_start_h > 24:
            raise ValueError("need ha_start_h < ha_end_h within 24 h")
        if self.pixel_scale_arcsec is not None and self.pixel_scale_arcsec <= 0:
            raise ValueError("pixel_scale_arcsec must be positive")
        if not 0 < self.fit_fraction <= 1:
            raise ValueError(f"fit_fraction must lie in (0, 1], got {self.fit_fraction}")

    @property
    def wavelength_m(self) -> float:
        return float((const.c / (self.freq_hz * u.Hz)).to_value(u.m))


@dataclass(frozen=True, eq=False)
class UVCoverage:
    """uvw (n, 3) in wavelengths: the kept samples then their conjugates (-u, -v, -w).

    baselines (n/2, 2) station indices (ant1, ant2) and times (n/2,) time-step indices of
    the kept samples; n_flagged counts baseline-time samples dropped by elevation.
    """

    uvw: np.ndarray
    baselines: np.ndarray
    time_index: np.ndarray
    mjd: np.ndarray
    n_times: int
    n_baselines: int
    n_flagged: int
    wavelength_m: float

    @property
    def max_uv(self) -> float:
        """Longest projected baseline sqrt(u² + v²), wavelengths."""
        return max_projected_baseline(self.uvw)


def _reference(layout: Layout) -> EarthLocation:
    return EarthLocation.from_geocentric(*layout.xyz.mean(axis=0), unit=u.m)


def observation_times(layout: Layout, obs: ObservationConfig) -> Time:
    """UTC times at which the local hour angle at the array reference runs over the range.

    The track starts at the first moment on ``obs.date`` (UTC) or after it when the local hour
    angle equals ``ha_start_h``, and is sampled every ``integration_s`` solar seconds.
    """
    ref = _reference(layout)
    t0 = Time(obs.date, scale="utc")
    lha0 = (t0.sidereal_time("apparent", longitude=ref.lon).hour - obs.ra_deg / 15.0)
    wait_sidereal_h = (obs.ha_start_h - lha0) % 24.0
    start = t0 + (wait_sidereal_h / SIDEREAL_PER_SOLAR) * u.hour
    duration_s = (obs.ha_end_h - obs.ha_start_h) * 3600.0 / SIDEREAL_PER_SOLAR
    n = int(math.floor(duration_s / obs.integration_s + 1e-9)) + 1
    return start + np.arange(n) * obs.integration_s * u.s


def source_elevation(layout: Layout, gha_rad: np.ndarray, dec_rad: float) -> np.ndarray:
    """Elevation (n_times, n_stations) radians: sin e = sin φ sin δ + cos φ cos δ cos(H + λ_east)."""
    loc = EarthLocation.from_geocentric(layout.xyz[:, 0], layout.xyz[:, 1], layout.xyz[:, 2], unit=u.m)
    lat, lon = loc.lat.to_value(u.rad), loc.lon.to_value(u.rad)
    lha = gha_rad[:, None] + lon[None, :]
    s = np.sin(lat) * math.sin(dec_rad) + np.cos(lat) * math.cos(dec_rad) * np.cos(lha)
    return np.arcsin(np.clip(s, -1.0, 1.0))


def project_baselines(b: np.ndarray, gha_rad: np.ndarray, dec_rad: float) -> np.ndarray:
    """(n_b, 3) ITRF baselines (metres or wavelengths), (n_t,) hour angles -> (n_t, n_b, 3) uvw."""
    sh, ch = np.sin(gha_rad)[:, None], np.cos(gha_rad)[:, None]
    sd, cd = math.sin(dec_rad), math.cos(dec_rad)
    bx, by, bz = b[None, :, 0], b[None, :, 1], b[None, :, 2]
    uu = sh * bx + ch * by
    vv = -sd * ch * bx + sd * sh * by + cd * bz
    ww = cd * ch * bx - cd * sh * by + sd * bz
    return np.stack([uu, vv, ww], axis=-1)


def uv_coverage(layout: Layout, obs: ObservationConfig) -> UVCoverage:
    """Earth-rotation synthesis of every baseline over the observation, both (u, v) and (-u, -v)."""
    with iers.conf.set_temp("auto_download", False):  # never reach for the network
        times = observation_times(layout, obs)
        gha = times.sidereal_time("apparent", "greenwich").to_value(u.rad) - math.radians(obs.ra_deg)
    dec = math.radians(obs.dec_deg)
    i, j = np.triu_indices(layout.n_stations, k=1)
    lam = obs.wavelength_m
    uvw = project_baselines((layout.xyz[j] - layout.xyz[i]) / lam, gha, dec)  # (n_t, n_b, 3)
    keep = np.ones(uvw.shape[:2], dtype=bool)
    if obs.min_elevation_deg is not None:
        up = source_elevation(layout, gha, dec) >= math.radians(obs.min_elevation_deg)
        keep = up[:, i] & up[:, j]
    t_idx, b_idx = np.nonzero(keep)
    kept = uvw[t_idx, b_idx]
    return UVCoverage(
        uvw=np.concatenate([kept, -kept]),
        baselines=np.stack([i[b_idx], j[b_idx]], axis=1),
        time_index=t_idx,
        mjd=times.mjd,
        n_times=len(times),
        n_baselines=layout.n_baselines,
        n_flagged=int((~keep).sum()),
        wavelength_m=lam,
    )

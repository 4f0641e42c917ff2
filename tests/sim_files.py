"""Observations written by another tool (pyuvdata), for the tests and benchmarks that read them back.

``array_uvdata`` observes an image x (Jy/pixel, N×N, phase centre at pixel (N//2, N//2)) with a real layout
over given times, RR = LL = its visibilities (our sign convention, ``simulate.exact_visibilities``), each
with data weight ``weight`` (its nsample) and, for weight > 1, complex noise of std 1/√weight per real
coordinate. ``gains`` (n_scans, n_antennas) complex corrupt the file as an antenna-based error of the whole
signal path would: V -> g_p g_q* (V + n), weight -> weight / |g_p g_q*|² (so the noise's σ scales with the
gains, and closure quantities with their σ are exactly those of the uncorrupted file).
"""

from __future__ import annotations

import math
import warnings
from typing import Optional

import numpy as np
import pytest
import torch

C = 299792458.0


def scan_times(n_scans: int, per_scan: int, integration_s: float = 60.0, gap_s: float = 1800.0) -> np.ndarray:
    """Times (s from the start) of ``n_scans`` scans of ``per_scan`` integrations, ``gap_s`` apart."""
    return np.concatenate([k * (per_scan * integration_s + gap_s) + np.arange(per_scan) * integration_s
                           for k in range(n_scans)])


def array_uvdata(x: torch.Tensor, scale_arcsec: Optional[float], *, layout: str = "vla_b", freq: float = 1.4e9,
                 times_s: np.ndarray = np.arange(30) * 60.0, weight: float = 1.0, seed: int = 0,
                 gains: Optional[np.ndarray] = None, dec_deg: float = 30.0):
    """(UVData, uvw (n, 3) wavelengths, the scan of each sample (n,)) (module docstring). ``scale_arcsec``
    None: the pixel scale is fitted to the longest baseline (``gridding.fit_pixel_scale``), returned as a
    fourth value."""
    pyuvdata = pytest.importorskip("pyuvdata", reason="pyuvdata (the test extra) is not installed")
    from astropy import units as u
    from astropy.coordinates import EarthLocation
    from astropy.time import Time

    from ddrm.radio import load_layout
    from ddrm.radio.gridding import cell_coordinates, fit_pixel_scale
    from ddrm.radio.simulate import exact_visibilities

    lay = load_layout(layout)
    centre = lay.xyz.mean(axis=0)
    name = "VLA" if layout.startswith("vla") else layout.upper()
    tel = pyuvdata.Telescope.new(name=name, instrument=name,
                                 location=EarthLocation.from_geocentric(*centre, unit=u.m),
                                 antenna_positions=lay.xyz - centre, antenna_names=list(lay.stations),
                                 antenna_numbers=list(range(lay.n_stations)), mount_type="alt-az", feeds=["r", "l"],
                                 update_from_known=False)
    pairs = [(i, j) for i in range(lay.n_stations) for j in range(i + 1, lay.n_stations)]
    times = (Time("2026-03-21T06:00:00", scale="utc") + np.asarray(times_s) * u.s).jd
    catalog = {0: {"cat_name": "field", "cat_type": "sidereal", "cat_lon": math.radians(150.0),
                   "cat_lat": math.radians(dec_deg), "cat_frame": "icrs", "cat_epoch": 2000.0}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        uvd = pyuvdata.UVData.new(freq_array=np.array([freq]), polarization_array=np.array([-1, -2]), times=times,
                                  telescope=tel, antpairs=pairs, do_blt_outer=True, phase_center_catalog=catalog,
                                  vis_units="Jy", integration_time=60.0, channel_width=1e6, empty=True)
    uvw = uvd.uvw_array * freq / C
    N = x.shape[-1]
    fitted = scale_arcsec is None
    scale = fit_pixel_scale(uvw, N) if fitted else scale_arcsec
    vis = N * exact_visibilities(x[None].double(), cell_coordinates(uvw, N, scale))[0].numpy()
    if weight > 1:
        rng = np.random.default_rng(seed)
        vis = vis + (rng.standard_normal(len(vis)) + 1j * rng.standard_normal(len(vis))) / math.sqrt(weight)
    w = np.full(len(vis), float(weight))
    from ddrm.radio.crossval import scan_index

    scan = scan_index(uvd.time_array)
    if gains is not None:
        gg = gains[scan, uvd.ant_1_array] * np.conj(gains[scan, uvd.ant_2_array])
        vis, w = vis * gg, w / np.abs(gg) ** 2
    uvd.data_array = np.repeat(vis[:, None, None], 2, axis=2).astype(np.complex64)
    uvd.flag_array[:] = False
    uvd.nsample_array[:] = w[:, None, None]
    return (uvd, uvw, scan, scale) if fitted else (uvd, uvw, scan)


def write(uvd, path: str) -> str:
    """Write ``uvd`` as uvfits with a fixed history: pyuvdata's own records its creation time, so the same data
    made a file of another SHA-256 each run, and the imager seeds from it."""
    uvd.history = "radio-ddrm test file (tests/sim_files.py)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        uvd.write_uvfits(path)
    return path


def random_gains(n_scans: int, n_antennas: int, seed: int) -> np.ndarray:
    """Amplitudes uniform in [0.7, 1.3], phases uniform (n_scans, n_antennas)."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0.7, 1.3, (n_scans, n_antennas)) * np.exp(1j * rng.uniform(-np.pi, np.pi, (n_scans, n_antennas)))

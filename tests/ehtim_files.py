"""Sparse-VLBI observations of known skies written by ehtim, for the tests and ``benchmarks/vlbi_truth.py``.

A sky is a function of the grid: ``render(N, pixel_uas)`` -> (N, N) Jy/pixel in our orientation (row r to
the North, column c to the West, centre at (N//2, N//2)), so every imager is scored against the truth drawn
on its own grid. ``observe`` draws the sky on a fine grid, turns it into an ehtim Image (ehtim's row 0 is
the North: the array flips vertically) and observes it with ``Image.observe_same`` on the real track of a
template file: thermal noise, station gain errors and, by default, uncalibrated station phases
(``ampcal=False, phasecal=False``: the EHT imaging challenges' convention), written with ehtim's own
``save_uvfits``. ehtim seeds its gains and phases with Python's ``hash()`` of strings, which is salted per
process (PYTHONHASHSEED); ``observe`` swaps in a SHA-256 of the same strings, so a seed gives the same file
in every process.
"""

from __future__ import annotations

import hashlib
import math
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "visibilities")
M87_095 = os.path.join(SHARED, "SR1_M87_2017_095_lo_hops_netcal_StokesI.uvfits")
M87_101 = os.path.join(SHARED, "SR1_M87_2017_101_lo_hops_netcal_StokesI.uvfits")
CENA_100 = os.path.join(SHARED, "CenA_2017_100_lo_hops_netcal_StokesI.uvfits")
FINE_N, FINE_UAS = 128, 1.0  # the grid ehtim observes: 128 µas at 1 µas pixels


@dataclass(frozen=True)
class Sky:
    """A named sky of a class ("ring", "crescent", "jet", "double", "gaussian", "galaxy") and its flux (Jy)."""

    name: str
    kind: str
    flux: float
    render_unit: Callable[[np.ndarray, np.ndarray], np.ndarray]  # (x East→West µas, y South→North µas) -> ≥ 0

    def render(self, N: int, pixel_uas: float) -> np.ndarray:
        """(N, N) Jy/pixel: the sky integrated over each pixel (4×4 sub-samples), total ``flux``."""
        sub = 4
        k = (np.arange(N * sub) + 0.5) / sub - 0.5 - N // 2
        y, x = np.meshgrid(k * pixel_uas, k * pixel_uas, indexing="ij")
        img = self.render_unit(x, y).reshape(N, sub, N, sub).mean((1, 3))
        total = img.sum()
        return img * (self.flux / total) if total > 0 else img


def _gauss(x, y, x0, y0, fwhm):
    s = fwhm / math.sqrt(8 * math.log(2))
    return np.exp(-((x - x0) ** 2 + (y - y0) ** 2) / (2 * s ** 2))


def ring(diameter_uas: float, width_uas: float, flux: float = 0.6, name: str = "") -> Sky:
    def f(x, y):
        r = np.hypot(x, y)
        return np.exp(-0.5 * ((r - diameter_uas / 2) / (width_uas / 2.355)) ** 2)
    return Sky(name or f"ring{diameter_uas:g}", "ring", flux, f)


def crescent(diameter_uas: float, width_uas: float, brightness_angle_deg: float = 180.0, contrast: float = 0.7,
             flux: float = 0.6, name: str = "") -> Sky:
    """A ring brighter towards position angle ``brightness_angle_deg`` (E of N; 180: the South)."""
    pa = math.radians(brightness_angle_deg)

    def f(x, y):
        r, theta = np.hypot(x, y), np.arctan2(-x, y)  # position angle East of North (x runs West)
        return np.exp(-0.5 * ((r - diameter_uas / 2) / (width_uas / 2.355)) ** 2) * (1 + contrast * np.cos(theta - pa))
    return Sky(name or f"crescent{diameter_uas:g}", "crescent", flux, f)


def jet(knots: int = 4, length_uas: float = 60.0, angle_deg: float = 60.0, flux: float = 1.0, name: str = "") -> Sky:
    """A bright core and ``knots`` fading, widening knots along position angle ``angle_deg``."""
    pa = math.radians(angle_deg)

    def f(x, y):
        out = _gauss(x, y, -length_uas / 2 * -math.sin(pa), -length_uas / 2 * math.cos(pa), 8.0)
        for k in range(1, knots + 1):
            d = -length_uas / 2 + length_uas * k / knots
            out = out + 0.6 ** k * _gauss(x, y, -d * math.sin(pa), d * math.cos(pa), 8.0 + 3 * k)
        return out
    return Sky(name or f"jet{knots}", "jet", flux, f)


def double(separation_uas: float = 40.0, ratio: float = 0.5, flux: float = 0.8, name: str = "") -> Sky:
    def f(x, y):
        return _gauss(x, y, -separation_uas / 2, 5.0, 10.0) + ratio * _gauss(x, y, separation_uas / 2, -5.0, 14.0)
    return Sky(name or f"double{separation_uas:g}", "double", flux, f)


def gaussian(fwhm_uas: float = 30.0, flux: float = 0.6, name: str = "") -> Sky:
    return Sky(name or f"gaussian{fwhm_uas:g}", "gaussian", flux, lambda x, y: _gauss(x, y, 0.0, 0.0, fwhm_uas))


def galaxy(image: np.ndarray, width_uas: float, flux: float = 0.6, name: str = "galaxy") -> Sky:
    """A FIRST galaxy image (n, n) ≥ 0, our orientation, shrunk to ``width_uas`` across (bilinear)."""
    img = np.asarray(image, np.float64)
    n = img.shape[0]

    def f(x, y):
        c = x / width_uas * n + n / 2 - 0.5
        r = y / width_uas * n + n / 2 - 0.5
        r0, c0 = np.floor(r).astype(int), np.floor(c).astype(int)
        fr, fc = r - r0, c - c0
        out = np.zeros_like(x)
        for dr, wr in ((0, 1 - fr), (1, fr)):
            for dc, wc in ((0, 1 - fc), (1, fc)):
                rr, cc = r0 + dr, c0 + dc
                ok = (rr >= 0) & (rr < n) & (cc >= 0) & (cc < n)
                out = out + np.where(ok, wr * wc * img[np.clip(rr, 0, n - 1), np.clip(cc, 0, n - 1)], 0)
        return out
    return Sky(name, "galaxy", flux, f)


@contextmanager
def _stable_hash_seeds():
    """ehtim's ``hashrandn``/``hashrand`` seeded by a SHA-256 of their arguments instead of ``hash()``."""
    from ehtim.observing import obs_helpers as obsh

    def seed(args) -> None:
        digest = hashlib.sha256(",".join(map(repr, args)).encode()).digest()
        np.random.seed(int.from_bytes(digest[:4], "little"))

    def hashrandn(*args):
        seed(args)
        return np.random.randn()

    def hashrand(*args):
        seed(args)
        return np.random.rand()

    saved = obsh.hashrandn, obsh.hashrand
    obsh.hashrandn, obsh.hashrand = hashrandn, hashrand
    try:
        yield
    finally:
        obsh.hashrandn, obsh.hashrand = saved


def observe(sky: Sky, path: str, *, template: str = M87_095, seed: int = 0, phasecal: bool = False,
            ampcal: bool = False, gain_error: float = 0.1) -> str:
    """Write ehtim's synthetic observation of ``sky`` on ``template``'s track to ``path`` (module docstring)."""
    if not os.path.isfile(template):
        pytest.skip(f"shared EHT file absent: {template}")
    eh = pytest.importorskip("ehtim", reason="ehtim is not installed (pip install -e '.[test]')")
    obs = eh.obsdata.load_uvfits(template)
    fine = sky.render(FINE_N, FINE_UAS)
    im = eh.image.Image(np.ascontiguousarray(fine[::-1]), FINE_UAS * eh.RADPERUAS, obs.ra, obs.dec, rf=obs.rf,
                        source=sky.name, mjd=obs.mjd)
    with _stable_hash_seeds():
        out = im.observe_same(obs, ttype="direct", add_th_noise=True, ampcal=ampcal, phasecal=phasecal,
                              stabilize_scan_phase=False, stabilize_scan_amp=False, gain_offset=gain_error,
                              gainp=gain_error, seed=seed, verbose=False)
    out.save_uvfits(path)
    return path

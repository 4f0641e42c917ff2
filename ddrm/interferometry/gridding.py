"""Gridding of uv samples onto the N×N image Fourier grid (design.md §3), natural weighting.

For a pixel scale Δθ (radians) a sample (u, v) in wavelengths lands at continuous cell
coordinates (u N Δθ, v N Δθ). With ``img[row, col]``, row 0 South and col 0 East (l grows to
the East, so to lower columns) and V(u, v) = Σ I exp(+2πi(u l + v m)), the FFT cell is

    (k_row, k_col) = (round(-v N Δθ), round(u N Δθ))  mod N      (unshifted FFT grid).

A sample is on the grid when both |k| <= (N-1)//2, so that it and its conjugate both are.
Counts n_k are the number of samples per cell (conjugates included), which the Fourier
operator turns into singular values √(n_k / mean n).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

ARCSEC = math.pi / (180 * 3600)
DEFAULT_FIT_FRACTION = 0.9  # longest projected baseline at this fraction of the Nyquist radius


def cell_coordinates(uvw: np.ndarray, N: int, pixel_scale_arcsec: float) -> np.ndarray:
    """Continuous cell coordinates (n, 2) = (k_row, k_col) = (-v, u) · N Δθ."""
    scale = N * pixel_scale_arcsec * ARCSEC
    return np.stack([-uvw[:, 1] * scale, uvw[:, 0] * scale], axis=1)


def max_projected_baseline(uvw: np.ndarray) -> float:
    """Longest projected baseline max √(u² + v²) of uvw (n, 3), in wavelengths (0 if empty)."""
    return float(np.hypot(uvw[:, 0], uvw[:, 1]).max()) if len(uvw) else 0.0


def fit_pixel_scale(uvw: np.ndarray, N: int, fraction: float = DEFAULT_FIT_FRACTION) -> float:
    """Pixel scale (arcsec) putting the longest projected baseline at ``fraction`` of Nyquist:
    max √(u²+v²) · N Δθ = fraction · N/2, i.e. Δθ = fraction / (2 max|uv|)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
    max_uv = max_projected_baseline(uvw)
    if max_uv <= 0:
        raise ValueError("cannot fit a pixel scale: no non-zero baseline")
    return fraction / (2 * max_uv) / ARCSEC


@dataclass(frozen=True, eq=False)
class GriddedCoverage:
    """counts (N, N) float64 on the unshifted FFT grid; samples on and off the grid."""

    counts: torch.Tensor
    pixel_scale_arcsec: float
    n_on_grid: int
    n_off_grid: int

    @property
    def fraction_sampled(self) -> float:
        return float((self.counts > 0).double().mean())


def nearest_cells(kappa: np.ndarray, N: int) -> tuple[np.ndarray, np.ndarray]:
    """The one gridding rule: continuous cell coordinates kappa (n, 2) -> (flat indices of the
    nearest cells of the on-grid samples (n_on,), on-grid mask (n,)), with k = round(κ) on the
    grid when both |k| <= (N-1)//2, flat = (k_row mod N)·N + (k_col mod N)."""
    k = np.rint(kappa).astype(np.int64)
    on = (np.abs(k) <= (N - 1) // 2).all(axis=1)
    return (k[on, 0] % N) * N + (k[on, 1] % N), on


def grid_counts(uvw: np.ndarray, N: int, pixel_scale_arcsec: float) -> GriddedCoverage:
    """Count samples per cell (nearest cell), dropping and counting those off the grid."""
    if N < 2 or pixel_scale_arcsec <= 0:
        raise ValueError("need N >= 2 and a positive pixel scale")
    flat, on = nearest_cells(cell_coordinates(uvw, N, pixel_scale_arcsec), N)
    counts = np.bincount(flat, minlength=N * N).reshape(N, N).astype(np.float64)
    return GriddedCoverage(torch.from_numpy(counts), pixel_scale_arcsec, int(on.sum()), int((~on).sum()))

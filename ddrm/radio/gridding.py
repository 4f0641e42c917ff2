"""Gridding of uv samples onto the N×N image Fourier grid (docs/design.md §3), natural weighting.

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

from ddrm.inverse.operators.fourier import conjugate_flip

ARCSEC = math.pi / (180 * 3600)
DEFAULT_FIT_FRACTION = 0.9  # longest projected baseline at this fraction of the Nyquist radius


def cell_coordinates(uvw: np.ndarray, N: int, pixel_scale_arcsec: float) -> np.ndarray:
    """Continuous cell coordinates (n, 2) = (k_row, k_col) = (-v, u) · N Δθ."""
    scale = N * pixel_scale_arcsec * ARCSEC
    return np.stack([-uvw[:, 1] * scale, uvw[:, 0] * scale], axis=1)


def max_projected_baseline(uvw: np.ndarray) -> float:
    """Longest projected baseline max √(u² + v²) of uvw (n, 3), in wavelengths (0 if empty)."""
    return float(np.hypot(uvw[:, 0], uvw[:, 1]).max()) if len(uvw) else 0.0


MAX_OVERSAMPLING = 32  # the finest pixel the data support: 1/32 of the Nyquist pixel 1/(2 max|uv|)


def min_pixel_scale(uvw: np.ndarray) -> float:
    """The finest pixel scale (arcsec) the data support, 1 / (2 max|uv| ``MAX_OVERSAMPLING``): finer pixels
    put the beam over ``MAX_OVERSAMPLING`` pixels per Nyquist cell (CLEAN's scales then outgrow memory)."""
    max_uv = max_projected_baseline(uvw)
    return 1 / (2 * max_uv * MAX_OVERSAMPLING) / ARCSEC if max_uv > 0 else 0.0


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


WEIGHTINGS = ("natural", "uniform", "briggs")


@dataclass(frozen=True, eq=False)
class WeightedGrid:
    """Visibilities gridded onto the unshifted N×N FFT grid, conjugate-symmetric (each sample also
    lands at -k as its conjugate):

    X               (N, N) complex128: the data-weighted mean visibility per cell, Σ w_j V_j / Σ w_j, divided
                    by N and phase-shifted to pixel (0, 0), i.e. the unitary DFT of the sky in the same units;
                    the zero-spacing cell (DC, the total flux) takes Σ w_j |V_j| / Σ w_j (``zero_spacing_amplitudes``)
    data_weight     (N, N) Σ w_j per cell: the cell mean has noise 1/√(Σ w_j) per real coordinate (·1/N)
    imaging_weight  (N, N) the weighting scheme's total per cell: natural Σ w_j, uniform 1, Briggs
                    Σ w_j / (1 + f² Σ w_j), f² = (5·10^-R)² / (Σ_k W_k² / Σ_k W_k)
    count           (N, N) samples per cell; n_on / n_off samples on and off the grid
    scatter_chi2    Σ_j w_j |V_j - V̄_k|² / (2 Σ_k (n_k - 1)): 1 when the data weights are right and the
                    sky does not vary within a cell; NaN when no cell holds two samples
    """

    X: torch.Tensor
    data_weight: torch.Tensor
    imaging_weight: torch.Tensor
    count: torch.Tensor
    pixel_scale_arcsec: float
    n_on: int
    n_off: int
    scatter_chi2: float


def imaging_weights(data_weight: torch.Tensor, weighting: str, robust: float = 0.0) -> torch.Tensor:
    """Per-cell imaging weight of a scheme (``WeightedGrid``) from the per-cell data weights W_k."""
    if weighting not in WEIGHTINGS:
        raise ValueError(f"unknown weighting {weighting!r}; choose one of {WEIGHTINGS}")
    W = data_weight
    if weighting == "natural":
        return W.clone()
    if weighting == "uniform":
        return (W > 0).to(W.dtype)
    f2 = (5 * 10 ** (-robust)) ** 2 / float((W ** 2).sum() / W.sum())
    return W / (1 + f2 * W)


def grid_weighted(uvw: np.ndarray, vis: np.ndarray, weight: np.ndarray, N: int, pixel_scale_arcsec: float,
                  weighting: str = "natural", robust: float = 0.0) -> WeightedGrid:
    """Grid visibilities vis (n,) with data weights (n,) at uvw (n, 2 or 3) wavelengths by the one
    nearest-cell rule (``nearest_cells``), each with its conjugate at (-u, -v)."""
    if N < 2 or pixel_scale_arcsec <= 0:
        raise ValueError("need N >= 2 and a positive pixel scale")
    vis = zero_spacing_amplitudes(uvw, vis, N, pixel_scale_arcsec)
    uv = np.concatenate([uvw[:, :2], -uvw[:, :2]])
    v_all = np.concatenate([vis, np.conj(vis)])
    w_all = np.concatenate([weight, weight]).astype(np.float64)
    flat, on = nearest_cells(cell_coordinates(uv, N, pixel_scale_arcsec), N)
    idx = torch.from_numpy(flat)
    W = torch.zeros(N * N, dtype=torch.float64).index_add_(0, idx, torch.from_numpy(w_all[on]))
    S = torch.zeros(N * N, dtype=torch.complex128).index_add_(0, idx, torch.from_numpy(w_all[on] * v_all[on]))
    C = torch.zeros(N * N, dtype=torch.float64).index_add_(0, idx, torch.ones(len(flat), dtype=torch.float64))
    mean = S / W.clamp_min(1e-300)
    resid = torch.from_numpy(v_all[on]) - mean[idx]
    dof = float((C - (C > 0).double()).sum())
    chi2 = float((torch.from_numpy(w_all[on]) * resid.abs() ** 2).sum()) / (2 * dof) if dof > 0 else float("nan")
    X = mean.reshape(N, N) * origin_shift(N) / N
    W = W.reshape(N, N)
    W, C = (W + conjugate_flip(W)) / 2, C.reshape(N, N)  # symmetric by construction; exactly so despite summation order
    return WeightedGrid(X, W, imaging_weights(W, weighting, robust), C, pixel_scale_arcsec, int(on.sum() // 2),
                        int((~on).sum() // 2), chi2)


def zero_spacing_amplitudes(uvw: np.ndarray, vis: np.ndarray, N: int, pixel_scale_arcsec: float) -> np.ndarray:
    """vis (n,) with the samples of the zero-spacing cell replaced by their amplitudes |V_j|.

    A baseline shorter than half a cell, 1/(2 N Δθ), sees the whole N×N field as unresolved, so a real,
    non-negative sky gives it phase 0 and |V| = the total flux; a phase there is calibration error (the
    EHT's intra-site pairs, SMA-JCMT and ALMA-APEX, carry station phases of ±150° in the netcal files)
    and would flip the sign of the whole image. Both imagers (``grid_weighted`` and the dirty image) use it."""
    flat, on = nearest_cells(cell_coordinates(uvw, N, pixel_scale_arcsec), N)
    dc = np.zeros(len(vis), dtype=bool)
    dc[np.flatnonzero(on)[flat == 0]] = True
    return np.where(dc, np.abs(vis), vis).astype(np.complex128)


def origin_shift(N: int) -> torch.Tensor:
    """(N, N) phase factors moving the phase centre from pixel (N//2, N//2) to the FFT origin (0, 0)."""
    f = torch.fft.fftfreq(N, d=1.0 / N, dtype=torch.float64)
    return torch.exp(-2j * math.pi * (f[:, None] + f[None, :]) * (N // 2) / N)


def visibility_imaging_weights(uvw: np.ndarray, weight: np.ndarray, grid: WeightedGrid) -> np.ndarray:
    """Per-visibility imaging weights (n,) of the grid's scheme, for imagers that do not grid by nearest cell
    (``dirty.nufft_dirty``): w_j · I_k / W_k with k the sample's cell on the grid (the one rule), W_k its
    summed data weights and I_k the scheme's cell weight (``imaging_weights``); 0 off the grid."""
    N = grid.X.shape[-1]
    flat, on = nearest_cells(cell_coordinates(uvw, N, grid.pixel_scale_arcsec), N)
    ratio = (grid.imaging_weight / grid.data_weight.clamp_min(1e-300)).flatten().numpy()
    out = np.zeros(len(weight))
    out[on] = np.asarray(weight, dtype=np.float64)[on] * ratio[flat]
    return out

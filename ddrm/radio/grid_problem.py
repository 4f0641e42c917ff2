"""From gridded visibilities to what the samplers and baselines take: the operator, measurements
and noise levels. Pure: tensors in, tensors out (the imaging recipe itself is ``ddrm.radio.imaging``).

With X the unitary DFT of the sky in Jy/pixel (``WeightedGrid.X``), cell k's mean has complex noise
of std 1/(N √W_k) per real coordinate (W_k the summed data weights). The operator's singular values
come from the imaging weights I_k, s_k = √(I_k / mean I), and the measurements are

    y_jy = s ⊙ x̄,   x̄ = the real Fourier coordinates of X (√2 Re, √2 Im per conjugate pair),

with noise std σ_k = s_k √2 / (N √W_k) per coordinate: the same σ for every coordinate under
natural weighting (I = W); otherwise ``sigma_weights`` is their RMS. Model space, for a flux scale
F (Jy/pixel mapped to image value 1): y_model = 2 y_jy / F - H 1, σ_model = 2 σ / F.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from ddrm.inverse.operators.fourier import FourierSamplingOperator
from ddrm.radio.gridding import WeightedGrid


@dataclass(frozen=True, eq=False)
class GriddedObservation:
    """op; y_jy (M,) in Jy/pixel units; σ per coordinate from the data weights, and the same scaled by
    the in-cell scatter (``sigma_scatter``; NaN if no cell holds two samples)."""

    op: FourierSamplingOperator
    y_jy: torch.Tensor
    sigma_weights: float
    sigma_scatter: float
    grid: WeightedGrid


def observation_from_grid(grid: WeightedGrid) -> GriddedObservation:
    op = FourierSamplingOperator(grid.imaging_weight)
    coords = op.basis.coordinates(grid.X)
    s = op.singulars.to(torch.float64)
    y = op.gather(coords) * s
    N = op.N
    W = grid.data_weight.flatten()[op.measured]
    sigma_k = s * math.sqrt(2) / (N * W.sqrt())
    sigma = float(sigma_k.pow(2).mean().sqrt())
    scatter = sigma * math.sqrt(grid.scatter_chi2) if math.isfinite(grid.scatter_chi2) else float("nan")
    return GriddedObservation(op, y, sigma, scatter, grid)


def with_total_flux(grid: WeightedGrid, flux_jy: float) -> WeightedGrid:
    """The grid with its zero-spacing cell set to a total flux (Jy) when no baseline measured it:
    X[0, 0] = flux / N (the unitary DFT's DC of a sky of that total), with the largest cell weight, so
    the prior cannot drift the sky's total. A measured DC is kept as it is."""
    if float(grid.data_weight[0, 0]) > 0:
        return grid
    N = grid.X.shape[-1]
    X, W, imaging = grid.X.clone(), grid.data_weight.clone(), grid.imaging_weight.clone()
    X[0, 0], W[0, 0], imaging[0, 0] = flux_jy / N, W.max(), imaging.max()
    return replace(grid, X=X, data_weight=W, imaging_weight=imaging)


def to_model_space(y_jy: torch.Tensor, op: FourierSamplingOperator, flux_scale: float) -> torch.Tensor:
    """y_model = 2 y_jy / F - H 1 (H 1 is non-zero only at DC, almost never measured)."""
    ones = torch.ones(op.N, op.N, dtype=y_jy.dtype)
    return 2 * y_jy / flux_scale - op.H(ones)

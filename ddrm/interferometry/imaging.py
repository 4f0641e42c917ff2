"""From gridded visibilities to what the samplers and baselines take: the operator, measurements
and noise levels (issue 13). Pure: tensors in, tensors out.

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
from dataclasses import dataclass

import torch

from ..operators.fourier import FourierSamplingOperator
from .gridding import WeightedGrid


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


def to_model_space(y_jy: torch.Tensor, op: FourierSamplingOperator, flux_scale: float) -> torch.Tensor:
    """y_model = 2 y_jy / F - H 1 (H 1 is non-zero only at DC, almost never measured)."""
    ones = torch.ones(op.N, op.N, dtype=y_jy.dtype)
    return 2 * y_jy / flux_scale - op.H(ones)

"""Simulated observations y = H x + z (docs/design.md §2-3), and exact off-grid visibilities.

σ_y is the std of the noise on each measured real coordinate of y (model space), given
directly or from a target SNR, SNR_dB = 10 log10(mean(y_clean²) / σ_y²) per observation.

The exact option evaluates the unitary-DFT visibilities of x at the continuous cell
coordinates κ = (k_row, k_col) of every uv sample, with the phase centre at pixel (N//2, N//2):

    V(κ) = (1/N) Σ_{r,c} x[r, c] exp(-2πi (κ_row (r - N//2) + κ_col (c - N//2)) / N),

averages them per cell (natural weighting), and moves the phase centre back to pixel (0, 0),
the FFT's origin. At exact cell centres this equals H x; elsewhere the difference is the
gridding error.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import numpy as np
import torch

from ddrm.inverse.operators.fourier import FourierSamplingOperator
from ddrm.radio.gridding import nearest_cells, origin_shift


def sigma_for_snr(y_clean: torch.Tensor, snr_db: float) -> torch.Tensor:
    """σ_y (B,) giving 10 log10(mean(y²)/σ_y²) = snr_db for each observation y_clean (B, M)."""
    return (y_clean.pow(2).mean(dim=-1) / 10 ** (snr_db / 10)).sqrt()


def add_noise(
    y_clean: torch.Tensor,
    generators: Union[torch.Generator, Sequence[torch.Generator]],
    *,
    sigma_y: Optional[float] = None,
    snr_db: Optional[float] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The one way noise is added: y = y_clean + σ_y z (B, M), with exactly one of ``sigma_y`` or
    ``snr_db``; returns (y, σ_y (B,)). z[b] is drawn from ``generators[b]`` (one per observation, so
    y does not depend on the batch), or in turn from a single generator."""
    if (sigma_y is None) == (snr_db is None):
        raise ValueError("give exactly one of sigma_y or snr_db")
    if y_clean.dim() != 2:
        raise ValueError(f"y_clean must be (B, M), got {tuple(y_clean.shape)}")
    if sigma_y is not None:
        if not sigma_y >= 0:
            raise ValueError(f"sigma_y must be >= 0, got {sigma_y}")
        sig = torch.full((y_clean.shape[0],), float(sigma_y), dtype=y_clean.dtype, device=y_clean.device)
    else:
        sig = sigma_for_snr(y_clean, float(snr_db))
    gens = [generators] * y_clean.shape[0] if isinstance(generators, torch.Generator) else list(generators)
    if len(gens) != y_clean.shape[0]:
        raise ValueError(f"need one generator per observation: {y_clean.shape[0]} observations, {len(gens)} generators")
    z = torch.stack([torch.randn(y_clean.shape[1], generator=g, dtype=y_clean.dtype, device=g.device) for g in gens])
    return y_clean + sig[:, None] * z.to(y_clean.device), sig


def exact_visibilities(x: torch.Tensor, kappa: np.ndarray, chunk: int = 8192) -> torch.Tensor:
    """Direct DFT of images x (B, N, N) at continuous cell coordinates kappa (n, 2) -> (B, n) complex.

    Separable: V = Σ_r e_row[r] (x @ e_col)[r], cost O(B N² n), chunked over samples.
    """
    N = x.shape[-1]
    pix = torch.arange(N, dtype=torch.float64) - N // 2
    xc = x.to(torch.complex128)
    out = []
    for s in range(0, len(kappa), chunk):
        k = torch.from_numpy(np.ascontiguousarray(kappa[s:s + chunk]))
        e_row = torch.exp(-2j * math.pi * pix[:, None] * k[None, :, 0] / N)  # (N, n)
        e_col = torch.exp(-2j * math.pi * pix[:, None] * k[None, :, 1] / N)
        out.append(((xc @ e_col) * e_row).sum(dim=-2) / N)
    return torch.cat(out, dim=-1)


def grid_visibilities(vis: torch.Tensor, kappa: np.ndarray, N: int) -> torch.Tensor:
    """Average visibilities (B, n) into their nearest cells -> (B, N, N) complex spectrum,
    phase centre moved from pixel (N//2, N//2) to (0, 0). Off-grid samples are dropped."""
    cells, on = nearest_cells(kappa, N)
    flat = torch.from_numpy(cells)
    B = vis.shape[0]
    sums = torch.zeros(B, N * N, dtype=torch.complex128).index_add_(1, flat, vis[:, torch.from_numpy(on)])
    counts = torch.zeros(N * N, dtype=torch.float64).index_add_(0, flat, torch.ones(len(flat), dtype=torch.float64))
    grid = (sums / counts.clamp_min(1)).reshape(B, N, N)
    return grid * origin_shift(N)


def exact_measurements(x: torch.Tensor, op: FourierSamplingOperator, kappa: np.ndarray) -> torch.Tensor:
    """Noiseless y (B, M) from exact visibilities at kappa, gridded, in the operator's coordinates."""
    op.check_image(x)
    grid = grid_visibilities(exact_visibilities(x, kappa), kappa, op.N)
    coords = op.basis.coordinates(grid)
    return (op.gather(coords) * op.singulars.to(coords)).to(x.dtype)

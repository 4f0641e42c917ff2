"""Fourier sampling H = S F with its exact real SVD (docs/design.md §2).

Grid convention (used everywhere in radio-ddrm): Fourier cells are indexed on the
*unshifted* FFT grid, cell (k1, k2) with k ∈ [0, N), DC at (0, 0), negative
frequencies k > N/2 wrapped; the conjugate of cell k is (-k) mod N. Masks drawn
centred (DC at (N//2, N//2), as ``np.fft.fftshift`` gives) are passed with
``centred=True`` and shifted back with ``ifftshift``.

Real orthonormal basis (V). With X = F x (unitary DFT, X[-k] = conj X[k]):
    self-conjugate cells (k ≡ -k):   x̄[k]  = Re X[k]
    representative k of a pair:      x̄[k]  = √2 Re X[k]
    its partner -k:                  x̄[-k] = √2 Im X[k]  (= -√2 Im X[-k])
so x̄ = Vᵀ x is stored on the same N×N grid (flattened row-major to D = N²) and
‖x̄‖ = ‖x‖. The representative of {k, -k} is the cell with the smaller flat index.

Natural weighting. A cell holding n_k gridded visibilities (counting both (u, v)
and (-u, -v)), each with complex noise σ_vis per real/imaginary part, averages to
noise √2 σ_vis/√n_k on each real coordinate. Whitened, every measured coordinate
has noise σ_y and singular value s_k = √(n_k w); here w = 1 / mean_k(n_k) over
measured cells (so mean s² = 1), i.e. σ_y = σ_vis √(2w). Uniform weighting sets s = 1.
Measurements y ∈ R^M are the measured coordinates in flat order: U = I.
"""

from __future__ import annotations

import math
import warnings
from typing import Literal

import torch

from ddrm.inverse.operators.base import SVDOperator, _IdentityU

Weighting = Literal["natural", "uniform"]


def conjugate_flip(a: torch.Tensor) -> torch.Tensor:
    """a[..., (-k1) mod N, (-k2) mod N]: the value at each cell's conjugate partner."""
    return torch.roll(torch.flip(a, dims=(-2, -1)), shifts=(1, 1), dims=(-2, -1))


class RealFourierBasis:
    """The orthogonal V of docs/design.md §2 for N×N images, applied with FFTs only."""

    def __init__(self, N: int) -> None:
        if N < 1:
            raise ValueError(f"N must be >= 1, got {N}")
        self.N = int(N)
        flat = torch.arange(N * N).reshape(N, N)
        partner_flat = conjugate_flip(flat)
        self.self_conjugate = flat == partner_flat
        self.representative = flat < partner_flat
        self.partner = flat > partner_flat
        r2, ir2 = math.sqrt(2.0), 1 / math.sqrt(2.0)
        s, r, p = (m.double() for m in (self.self_conjugate, self.representative, self.partner))
        # Vᵀ: x̄ = cr Re X + ci Im X
        self._cr, self._ci = s + r2 * r, -r2 * p
        # V: Re X = p1 x̄ + p2 x̄f,  Im X = q1 x̄ + q2 x̄f   (x̄f = conjugate_flip(x̄))
        self._p1, self._p2 = s + ir2 * r, ir2 * p
        self._q1, self._q2 = -ir2 * p, ir2 * r

    def _c(self, a: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return a.to(device=like.device, dtype=like.dtype)

    def Vt(self, x: torch.Tensor) -> torch.Tensor:
        """(..., N, N) real -> (..., N²) real: x̄ = Vᵀ x."""
        return self.coordinates(torch.fft.fft2(x, norm="ortho"))

    def coordinates(self, X: torch.Tensor) -> torch.Tensor:
        """(..., N, N) Hermitian complex spectrum (unitary DFT units) -> (..., N²) real coordinates."""
        out = self._c(self._cr, X.real) * X.real + self._c(self._ci, X.real) * X.imag
        return out.reshape(*X.shape[:-2], -1)

    def V(self, xbar: torch.Tensor) -> torch.Tensor:
        """(..., N²) real -> (..., N, N) real: x = V x̄ (an inverse real FFT)."""
        N = self.N
        g = xbar.reshape(*xbar.shape[:-1], N, N)
        gf = conjugate_flip(g)
        re = self._c(self._p1, g) * g + self._c(self._p2, g) * gf
        im = self._c(self._q1, g) * g + self._c(self._q2, g) * gf
        half = torch.complex(re, im)[..., : N // 2 + 1]
        return torch.fft.irfft2(half, s=(N, N), norm="ortho")


def close_counts(counts: torch.Tensor) -> torch.Tensor:
    """Make per-cell counts (N, N) Hermitian-symmetric, n_k = max(n_k, n_{-k}), warning if needed."""
    closed = torch.maximum(counts, conjugate_flip(counts))
    added = int(((closed > 0) & ~(counts > 0)).sum())
    if added:
        warnings.warn(
            f"uv mask was not closed under k -> -k: added {added} conjugate cells "
            "(a cell counts as measured if it or its partner is)",
            stacklevel=3,
        )
    elif not torch.equal(closed, counts):
        warnings.warn("uv counts were not Hermitian-symmetric; used max(n_k, n_-k)", stacklevel=3)
    return closed


class FourierSamplingOperator(_IdentityU, SVDOperator):
    """H = S F for N×N real images, from a bool mask or per-cell counts (N, N).

    counts:    (N, N) bool or non-negative numbers of gridded visibilities per cell.
    centred:   True if ``counts`` has DC at (N//2, N//2) (fftshift-ed), False for the FFT grid.
    weighting: "natural" (s_k = √(n_k / mean n)) or "uniform" (s_k = 1).
    dtype:     dtype of the singular values.
    """

    def __init__(
        self,
        counts: torch.Tensor,
        *,
        centred: bool = False,
        weighting: Weighting = "natural",
        dtype: torch.dtype = torch.float64,
    ) -> None:
        counts = torch.as_tensor(counts)
        if counts.dim() != 2 or counts.shape[0] != counts.shape[1]:
            raise ValueError(f"uv counts must be square (N, N), got {tuple(counts.shape)}")
        if weighting not in ("natural", "uniform"):
            raise ValueError(f"unknown weighting {weighting!r}; expected 'natural' or 'uniform'")
        counts = counts.to(torch.float64)
        if not bool(torch.isfinite(counts).all()) or bool((counts < 0).any()):
            raise ValueError("uv counts must be finite and non-negative")
        if centred:
            counts = torch.fft.ifftshift(counts)
        counts = close_counts(counts)
        if not bool((counts > 0).any()):
            raise ValueError("uv mask measures no cell")
        self.N = int(counts.shape[0])
        self.basis = RealFourierBasis(self.N)
        self.counts = counts
        self.weighting = weighting
        flat = counts.flatten()
        self.measured = torch.nonzero(flat > 0).flatten()
        n = flat[self.measured]
        s = (n / n.mean()).sqrt() if weighting == "natural" else torch.ones_like(n)
        self.singulars = s.to(dtype)
        self.num_outputs = int(self.measured.numel())

    @property
    def mask(self) -> torch.Tensor:
        """(N, N) bool, unshifted FFT grid: True where a cell is measured."""
        return self.counts > 0

    def Vt(self, x: torch.Tensor) -> torch.Tensor:
        self.check_image(x)
        return self.basis.Vt(x)

    def V(self, xbar: torch.Tensor) -> torch.Tensor:
        return self.basis.V(xbar)

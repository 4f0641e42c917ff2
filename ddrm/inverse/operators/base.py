"""The SVD interface every linear operator implements (Kawar et al. 2022, §3; docs/design.md §2).

A forward operator H : R^D -> R^P (images x of shape (..., N, N), D = N²) is given by its SVD

    H = U Σ Vᵀ,   V ∈ R^{D×D} orthogonal,  U ∈ R^{P×M} with orthonormal columns,
    Σ = diag(s_1..s_M) > 0 acting on the *measured* spectral coordinates.

Spectral coordinates are flat: x̄ = Vᵀ x has shape (..., D). ``measured`` holds the M
indices of x̄ that H sees, aligned with ``singulars`` (shape (M,)). From these five
maps the derived H, Hᵀ and the pseudo-inverse H⁺ = V Σ⁻¹ Uᵀ follow, so a new
operator only has to say what its SVD is.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch


class SVDOperator(ABC):
    """Abstract linear operator with an explicit SVD. Subclasses set ``N``,
    ``singulars`` (M,), ``measured`` (M,) long and ``num_outputs`` (P)."""

    N: int
    singulars: torch.Tensor
    measured: torch.Tensor
    num_outputs: int

    # --- the SVD -----------------------------------------------------------
    @abstractmethod
    def Vt(self, x: torch.Tensor) -> torch.Tensor:
        """(..., N, N) image -> (..., D) spectral coordinates x̄ = Vᵀ x."""

    @abstractmethod
    def V(self, xbar: torch.Tensor) -> torch.Tensor:
        """(..., D) spectral coordinates -> (..., N, N) image x = V x̄."""

    @abstractmethod
    def Ut(self, y: torch.Tensor) -> torch.Tensor:
        """(..., P) measurements -> (..., M) coordinates Uᵀ y."""

    @abstractmethod
    def U(self, ybar: torch.Tensor) -> torch.Tensor:
        """(..., M) coordinates -> (..., P) measurements U ȳ."""

    # --- shapes and checks --------------------------------------------------
    @property
    def D(self) -> int:
        return self.N * self.N

    @property
    def num_measured(self) -> int:
        return int(self.measured.numel())

    def check_image(self, x: torch.Tensor) -> None:
        if x.dim() < 2 or tuple(x.shape[-2:]) != (self.N, self.N):
            raise ValueError(
                f"image has shape {tuple(x.shape)}; this operator needs (..., {self.N}, {self.N})"
            )

    def check_measurements(self, y: torch.Tensor) -> None:
        if y.dim() < 1 or y.shape[-1] != self.num_outputs:
            raise ValueError(
                f"measurements have shape {tuple(y.shape)}; this operator needs (..., {self.num_outputs})"
            )
        if not bool(torch.isfinite(y).all()):
            raise ValueError("measurements contain NaN or inf")

    # --- derived maps -----------------------------------------------------------
    def _s(self, like: torch.Tensor) -> torch.Tensor:
        return self.singulars.to(device=like.device, dtype=like.dtype)

    def _idx(self, like: torch.Tensor) -> torch.Tensor:
        return self.measured.to(device=like.device)

    def scatter(self, values: torch.Tensor) -> torch.Tensor:
        """(..., M) measured-coordinate values -> (..., D) with zeros elsewhere."""
        out = values.new_zeros(*values.shape[:-1], self.D)
        return out.index_copy_(-1, self._idx(values), values)

    def gather(self, xbar: torch.Tensor) -> torch.Tensor:
        """(..., D) -> (..., M) measured coordinates."""
        return xbar.index_select(-1, self._idx(xbar))

    def H(self, x: torch.Tensor) -> torch.Tensor:
        """y = H x = U Σ (Vᵀ x)_measured;  (..., N, N) -> (..., P)."""
        self.check_image(x)
        return self.U(self._s(x) * self.gather(self.Vt(x)))

    def Ht(self, y: torch.Tensor) -> torch.Tensor:
        """Hᵀ y = V scatter(Σ Uᵀ y);  (..., P) -> (..., N, N)."""
        self.check_measurements(y)
        return self.V(self.scatter(self._s(y) * self.Ut(y)))

    def H_pinv(self, y: torch.Tensor) -> torch.Tensor:
        """H⁺ y = V scatter(Σ⁻¹ Uᵀ y);  (..., P) -> (..., N, N)."""
        self.check_measurements(y)
        return self.V(self.scatter(self.Ut(y) / self._s(y)))

    def ybar(self, y: torch.Tensor) -> torch.Tensor:
        """ȳ = Σ⁻¹ Uᵀ y, the measured spectral coordinates implied by y;  (..., P) -> (..., M)."""
        self.check_measurements(y)
        return self.Ut(y) / self._s(y)


class _IdentityU:
    """Mixin: U = I on R^M (P = M), as for identity, masks and Fourier sampling."""

    def Ut(self, y: torch.Tensor) -> torch.Tensor:
        return y

    def U(self, ybar: torch.Tensor) -> torch.Tensor:
        return ybar

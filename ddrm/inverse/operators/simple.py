"""Simple operators: identity (denoising), pixel mask (inpainting), dense SVD (tests)."""

from __future__ import annotations

import torch

from ddrm.inverse.operators.base import SVDOperator, _IdentityU


def _flat_pixels(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(*x.shape[:-2], -1)


class _PixelBasis(_IdentityU, SVDOperator):
    """V = I: spectral coordinates are the pixels in row-major order."""

    def Vt(self, x: torch.Tensor) -> torch.Tensor:
        self.check_image(x)
        return _flat_pixels(x)

    def V(self, xbar: torch.Tensor) -> torch.Tensor:
        return xbar.reshape(*xbar.shape[:-1], self.N, self.N)


class IdentityOperator(_PixelBasis):
    """H = I on N×N images (denoising): every pixel measured with s = 1."""

    def __init__(self, N: int, dtype: torch.dtype = torch.float32) -> None:
        self.N = int(N)
        self.measured = torch.arange(self.N * self.N)
        self.singulars = torch.ones(self.N * self.N, dtype=dtype)
        self.num_outputs = self.N * self.N


class PixelMaskOperator(_PixelBasis):
    """Inpainting: y = the pixels where ``mask`` (N, N) bool is True, row-major order."""

    def __init__(self, mask: torch.Tensor, dtype: torch.dtype = torch.float32) -> None:
        mask = torch.as_tensor(mask, dtype=torch.bool)
        if mask.dim() != 2 or mask.shape[0] != mask.shape[1]:
            raise ValueError(f"mask must be square (N, N), got {tuple(mask.shape)}")
        if not bool(mask.any()):
            raise ValueError("mask measures no pixel")
        self.N = int(mask.shape[0])
        self.measured = torch.nonzero(mask.flatten()).flatten()
        self.singulars = torch.ones(self.measured.numel(), dtype=dtype)
        self.num_outputs = self.measured.numel()


class DenseSVDOperator(SVDOperator):
    """Any small H (P × N²) given as a dense matrix; its SVD by LAPACK.

    H = U Σ Vᵀ with the singular values above ``rtol · s_max`` kept (M of them);
    V is the full D×D right factor, so V Vᵀ = I.
    """

    def __init__(self, matrix: torch.Tensor, N: int, rtol: float = 1e-10) -> None:
        matrix = torch.as_tensor(matrix)
        if matrix.dim() != 2 or matrix.shape[1] != N * N:
            raise ValueError(f"matrix must have shape (P, {N * N}), got {tuple(matrix.shape)}")
        U, s, Vh = torch.linalg.svd(matrix, full_matrices=True)
        keep = s > rtol * s.max()
        M = int(keep.sum())
        self.N = int(N)
        self._U = U[:, :M]
        self._V = Vh.T
        self.singulars = s[:M]
        self.measured = torch.arange(M)
        self.num_outputs = int(matrix.shape[0])

    def Vt(self, x: torch.Tensor) -> torch.Tensor:
        self.check_image(x)
        return _flat_pixels(x) @ self._V.to(x)

    def V(self, xbar: torch.Tensor) -> torch.Tensor:
        return (xbar @ self._V.to(xbar).T).reshape(*xbar.shape[:-1], self.N, self.N)

    def Ut(self, y: torch.Tensor) -> torch.Tensor:
        return y @ self._U.to(y)

    def U(self, ybar: torch.Tensor) -> torch.Tensor:
        return ybar @ self._U.to(ybar).T

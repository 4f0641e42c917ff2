"""The likelihood of visibilities at their own (u, v), and its exact Gaussian step x | z, y.

Model space x ∈ [-1, 1] maps to the sky I = F (x + 1)/2 (Jy/pixel, flux scale F). With A the degridder
(``radio.nufft``: V_j = (A I)_j), visibilities y_j of weight w_j (1/σ_j² per real coordinate):

    y'_j = 2 y_j / F - (A 1)_j = (A x)_j + n_j,     n_j complex, std 2 σ_j / F per real coordinate,
    w'_j = F² w_j / 4,   G = Re(Aᴴ W' A),   b = Re(Aᴴ W' y').

G is a convolution: (G x)_p = Σ_q g(p - q) x_q with g(Δ) = Σ_j w'_j cos(2π κ_j·Δ / N), the PSF at every
offset in [-N, N) ("Toeplitz embedding"), applied exactly by one FFT pair on a 2N × 2N grid.

The step x | z, y under N(x; z, ρ² I) p(y | x) is Gaussian, precision P = I/ρ² + G, mean P⁻¹(z/ρ² + b). It
is sampled by perturb-and-optimise: x = P⁻¹(z̃/ρ² + b̃) with z̃ = z + ρ ξ and b̃ = b + Re(Aᴴ W' n), n
drawn from the noise (so that Re Aᴴ W' n ~ N(0, G)): the solution then has exactly mean P⁻¹(z/ρ² + b) and
covariance P⁻¹. P x = r is solved by conjugate gradients, preconditioned by T. Chan's optimal circulant
approximation of G (c(a) = ((N - a) g(a) + a g(a - N)) / N per axis: diagonal after one FFT, and positive
semi-definite as G is; the plain wrap g(a) + g(a - N) is not, and stalls CG on high-S/N data).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ddrm.inverse.samplers import fill_normal
from ddrm.radio.dirty import nufft_psf
from ddrm.radio.gridding import ARCSEC
from ddrm.radio.nufft import adjoint, degrid


@dataclass(frozen=True, eq=False)
class VisibilityLikelihood:
    """y' (n,) complex model-space data, w' (n,), their uv (n, 2), the Toeplitz kernel's FFT (2N, N + 1),
    the preconditioner's circulant spectrum (N, N//2 + 1), b = Re Aᴴ W' y' (N, N); all float64/complex128.
    Both kernels are real, so their spectra are Hermitian and kept as real FFTs' halves (``rfft2``)."""

    uv: np.ndarray
    y: np.ndarray
    w: np.ndarray
    N: int
    pixel_scale_arcsec: float
    kernel_fft: torch.Tensor
    circulant: torch.Tensor
    b: torch.Tensor

    @classmethod
    def build(cls, uv: np.ndarray, vis_jy: np.ndarray, weight: np.ndarray, N: int, pixel_scale_arcsec: float,
              flux_scale: float) -> "VisibilityLikelihood":
        """From visibilities (Jy) with weights 1/σ² (per real coordinate) at flux scale F (Jy/pixel)."""
        if not flux_scale > 0 or len(uv) == 0:
            raise ValueError("need visibilities and a positive flux scale")
        w = np.asarray(weight, dtype=np.float64) * flux_scale ** 2 / 4
        ones = degrid(uv=uv, image=torch.ones(N, N, dtype=torch.float64), pixel_size=pixel_scale_arcsec * ARCSEC)
        y = 2 * np.asarray(vis_jy, dtype=np.complex128) / flux_scale - ones
        g = nufft_psf(uv, w, N, pixel_scale_arcsec) * float(w.sum())  # (2N, 2N), g(Δ) at Δ mod 2N
        a = torch.arange(N, dtype=torch.float64)
        share = {0: (N - a) / N, N: a / N}  # T. Chan's optimal circulant: offset a and its alias a - N
        wrapped = sum(share[dr][:, None] * share[dc][None, :] * torch.roll(g, (dr, dc), (0, 1))[:N, :N]
                      for dr in (0, N) for dc in (0, N))
        return cls(np.asarray(uv, np.float64), y, w, N, pixel_scale_arcsec, torch.fft.rfft2(g),
                   torch.fft.rfft2(wrapped).real, adjoint(uv=uv, vis=w * y, npix=N, pixel_size=pixel_scale_arcsec * ARCSEC))

    def gram(self, x: torch.Tensor) -> torch.Tensor:
        """G x for x (..., N, N): the linear convolution with g, by FFT on the 2N grid."""
        N = self.N
        spectrum = torch.fft.rfft2(x.double(), s=(2 * N, 2 * N))  # zero-padded to the 2N grid
        return torch.fft.irfft2(spectrum * self.kernel_fft.to(x.device), s=(2 * N, 2 * N))[..., :N, :N]

    def noise_image(self, generators: Sequence[torch.Generator], per_generator: int) -> torch.Tensor:
        """Re Aᴴ W' n for n drawn from the data noise, (len(generators)·per_generator, N, N): ~ N(0, G)."""
        out = []
        sd = np.divide(1, np.sqrt(self.w), out=np.zeros_like(self.w), where=self.w > 0)  # a flagged sample: no noise
        for g in generators:
            for _ in range(per_generator):
                z = torch.randn(2, len(self.w), generator=g, dtype=torch.float64).numpy()
                out.append(adjoint(uv=self.uv, vis=self.w * sd * (z[0] + 1j * z[1]), npix=self.N, pixel_size=self.pixel_scale_arcsec * ARCSEC))
        return torch.stack(out)

    def chi2(self, x: torch.Tensor) -> float:
        """Σ_j w'_j |y'_j - (A x)_j|² / (2 n) of a model-space image (N, N)."""
        r = self.y - degrid(uv=self.uv, image=x.double(), pixel_size=self.pixel_scale_arcsec * ARCSEC)
        return float((self.w * (r.real ** 2 + r.imag ** 2)).sum() / (2 * len(r)))


def solve(like: VisibilityLikelihood, rhs: torch.Tensor, rho: float, x0: torch.Tensor, tol: float = 1e-6,
          max_iter: int = 200) -> torch.Tensor:
    """(I/ρ² + G)⁻¹ rhs for a stack rhs (n, N, N), by preconditioned conjugate gradients from x0, each image
    to a relative residual ``tol``."""
    def apply(v: torch.Tensor) -> torch.Tensor:
        return v / rho ** 2 + like.gram(v)

    inv = 1 / (1 / rho ** 2 + like.circulant.clamp_min(0)).to(rhs.device)

    def precondition(v: torch.Tensor) -> torch.Tensor:
        return torch.fft.irfft2(torch.fft.rfft2(v) * inv, s=v.shape[-2:])

    x = x0.double().clone()
    r = rhs.double() - apply(x)
    z = precondition(r)
    p = z.clone()
    rz = (r * z).sum((-2, -1), keepdim=True)
    target = tol * rhs.double().flatten(1).norm(dim=1).clamp_min(1e-300)
    for _ in range(max_iter):
        if bool((r.flatten(1).norm(dim=1) <= target).all()):
            break
        Ap = apply(p)
        alpha = rz / (p * Ap).sum((-2, -1), keepdim=True).clamp_min(1e-300)
        x, r = x + alpha * p, r - alpha * Ap
        z = precondition(r)
        rz_new = (r * z).sum((-2, -1), keepdim=True)
        p = z + rz_new / rz.clamp_min(1e-300) * p
        rz = rz_new
    return x


def likelihood_step(like: VisibilityLikelihood, z: torch.Tensor, rho: float, generators: Sequence[torch.Generator],
                    sample: bool = True) -> torch.Tensor:
    """x | z, y for z (B, S, N, N) (one generator per observation, B = 1 here): a draw of
    N(P⁻¹(z/ρ² + b), P⁻¹) by perturb-and-optimise, or its mean if not ``sample``."""
    B, S, N, _ = z.shape
    zf = z.reshape(B * S, N, N).double()
    rhs = zf / rho ** 2 + like.b.to(zf.device)
    if sample:
        xi = fill_normal(generators, z.new_empty(B, S, N, N, dtype=torch.float64)).reshape(B * S, N, N)
        rhs = rhs + xi / rho + like.noise_image(generators, S).to(zf.device)
    return solve(like, rhs, rho, zf).reshape(B, S, N, N).to(z.dtype)

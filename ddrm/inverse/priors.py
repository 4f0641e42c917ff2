"""Analytic priors with closed-form denoisers, for tests, demos and calibration studies.

A stationary Gaussian prior is diagonal in the real Fourier basis V (docs/design.md §2):
    x = μ 1 + V (√λ ⊙ ξ),  ξ ~ N(0, I),  λ_k = λ_{-k} >= 0  (a power spectrum).
For x_t = √ᾱ x_0 + √(1-ᾱ) ε the exact MMSE denoiser is, per spectral coordinate,
    E[x̄_0 | x̄_t] = μ̄ + λ √ᾱ / (ᾱ λ + 1 - ᾱ) · (x̄_t - √ᾱ μ̄).
"""

from __future__ import annotations

import torch

from ddrm.diffusion.schedule import Schedule
from ddrm.inverse.operators.fourier import RealFourierBasis, conjugate_flip


def radial_frequency(N: int) -> torch.Tensor:
    """|k| in cycles per image on the unshifted FFT grid, (N, N) float64."""
    f = torch.fft.fftfreq(N, d=1.0 / N, dtype=torch.float64)
    return torch.sqrt(f[:, None] ** 2 + f[None, :] ** 2)


class GaussianFourierPrior:
    """Stationary Gaussian prior on N×N images; callable as a denoiser D(x_t, t) -> x̂_0.

    variances: (N, N) λ on the FFT grid, Hermitian-symmetric; mean: the pixel mean μ.
    """

    def __init__(self, variances: torch.Tensor, schedule: Schedule, mean: float = 0.0) -> None:
        variances = torch.as_tensor(variances, dtype=torch.float64)
        if variances.dim() != 2 or variances.shape[0] != variances.shape[1]:
            raise ValueError(f"variances must be (N, N), got {tuple(variances.shape)}")
        if bool((variances < 0).any()) or not torch.allclose(variances, conjugate_flip(variances)):
            raise ValueError("variances must be non-negative and symmetric under k -> -k")
        self.N = int(variances.shape[0])
        self.basis = RealFourierBasis(self.N)
        self.schedule = schedule
        self.lam = variances.flatten()
        self.mean = float(mean)
        self.mu_bar = self.basis.Vt(torch.full((self.N, self.N), self.mean, dtype=torch.float64))

    @classmethod
    def power_law(cls, N: int, schedule: Schedule, *, pixel_variance: float = 0.1,
                  k0: float = 2.0, slope: float = 3.0, mean: float = 0.0) -> "GaussianFourierPrior":
        """λ_k ∝ (1 + (|k|/k0)²)^(-slope/2), scaled so the per-pixel variance is ``pixel_variance``."""
        lam = (1 + (radial_frequency(N) / k0) ** 2) ** (-slope / 2)
        return cls(lam * pixel_variance / lam.mean(), schedule, mean)

    @classmethod
    def fit(cls, images: torch.Tensor, schedule: Schedule) -> "GaussianFourierPrior":
        """The maximum-likelihood stationary Gaussian of images (n, N, N) (model space): μ the pixel
        mean, λ_k the mean of x̄_k² over images (x̄ = Vᵀ(x - μ)), averaged with λ_{-k}."""
        if images.dim() != 3 or images.shape[-1] != images.shape[-2] or images.shape[0] < 2:
            raise ValueError(f"need at least 2 square images (n, N, N), got {tuple(images.shape)}")
        x = images.to(torch.float64)
        mean = float(x.mean())
        N = x.shape[-1]
        lam = RealFourierBasis(N).Vt(x - mean).pow(2).mean(dim=0).reshape(N, N)
        return cls((lam + conjugate_flip(lam)) / 2, schedule, mean)

    def __call__(self, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """xt (n, C, N, N), t (n,) -> x̂_0 (n, C, N, N), exact posterior mean, computed in float64 and
        returned in x_t's dtype (so a float32 sampler gets this prior's exact denoiser to float32 rounding)."""
        x = xt.double()
        xbar = self.basis.Vt(x)  # (n, C, D)
        ab = self.schedule.alpha_bar_at(t.cpu()).to(x).reshape(-1, *([1] * (xbar.dim() - 1)))
        lam, mu = self.lam.to(x), self.mu_bar.to(x)
        gain = lam * ab.sqrt() / (ab * lam + 1 - ab)
        return self.basis.V(mu + gain * (xbar - ab.sqrt() * mu)).to(xt.dtype)

    def sample(self, n: int, generator: torch.Generator, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """n prior draws, (n, N, N)."""
        xi = torch.randn(n, self.N * self.N, generator=generator, dtype=dtype, device=generator.device)
        return self.basis.V(self.mu_bar.to(xi) + self.lam.to(xi).sqrt() * xi)

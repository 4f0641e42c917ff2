"""Per-observation metrics (docs/design.md §6), vectorised over a batch.

Inputs are in image space [0, 1]: samples x̂ (B, S, N, N), truth x (B, N, N).
μ̂ and σ̂² are the mean and the unbiased variance over the S samples.
"""

from __future__ import annotations

import math

import torch

SRE_VAR_FLOOR = 1e-8
SRE_PAPER_VAR_FLOOR = 1e-6


def _check(samples: torch.Tensor, truth: torch.Tensor) -> None:
    if samples.dim() != 4 or truth.dim() != 3 or samples.shape[0] != truth.shape[0] \
            or samples.shape[-2:] != truth.shape[-2:]:
        raise ValueError(f"need samples (B, S, N, N) and truth (B, N, N), got {tuple(samples.shape)} "
                         f"and {tuple(truth.shape)}")


def _pixel_mean(a: torch.Tensor) -> torch.Tensor:
    return a.flatten(start_dim=1).mean(dim=1)


def mse(samples: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Mean over samples and pixels of (x̂_s - x)², (B,)."""
    _check(samples, truth)
    return _pixel_mean((samples - truth[:, None]) ** 2)


def mse_mean(samples: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Mean over pixels of (μ̂ - x)², (B,)."""
    _check(samples, truth)
    return _pixel_mean((samples.mean(dim=1) - truth) ** 2)


def psnr_from_mse(m: torch.Tensor) -> torch.Tensor:
    """10 log10(1 / mse) for data range 1."""
    return -10 * torch.log10(m)


def psnr(samples: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    return psnr_from_mse(mse(samples, truth))


def snr(samples: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """10 log10(Σ x² / Σ (x̂ - x)²), sums over samples and pixels (= mean x² / mse)."""
    return 10 * torch.log10(_pixel_mean(truth**2) / mse(samples, truth))


def _mean_std(samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if samples.shape[1] < 2:
        raise ValueError("uncertainty metrics need at least 2 samples per observation")
    return samples.mean(dim=1), samples.var(dim=1, unbiased=True)


def sre(samples: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Mean over pixels of (x - μ̂)² / max(σ̂², 1e-8); 1 for calibrated uncertainty."""
    _check(samples, truth)
    mu, var = _mean_std(samples)
    return _pixel_mean((truth - mu) ** 2 / var.clamp_min(SRE_VAR_FLOOR))


def sre_paper(samples: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """The reference code's statistic: mean over samples, pixels of (x̂_s - x)² / max(σ̂², 1e-6) (≈ 2 if exact)."""
    _check(samples, truth)
    _, var = _mean_std(samples)
    return _pixel_mean((samples - truth[:, None]) ** 2 / var.clamp_min(SRE_PAPER_VAR_FLOOR)[:, None])


def student_t_quantile(p: float, dof: int) -> float:
    """The p-quantile of Student's t with ``dof`` degrees of freedom, by its CDF in θ = arctan(t/√ν),
    where the density is ∝ cos^(ν-1) θ on (-π/2, π/2) (smooth, so a fine grid integrates it exactly)."""
    import math

    import numpy as np

    if not 0 < p < 1 or dof < 1:
        raise ValueError(f"need 0 < p < 1 and dof >= 1, got {p}, {dof}")
    theta = np.linspace(-math.pi / 2, math.pi / 2, 200_001)
    pdf = np.cos(theta) ** (dof - 1)
    cdf = np.concatenate([[0.0], np.cumsum((pdf[1:] + pdf[:-1]) / 2 * np.diff(theta))])
    return float(math.sqrt(dof) * math.tan(np.interp(p, cdf / cdf[-1], theta)))


def interval_halfwidth_factor(level: float, S: int) -> float:
    """k such that |x - μ̂| <= k σ̂ holds with probability ``level`` when x and the S samples are independent
    draws of one Gaussian: the prediction interval k = t_{S-1}((1+level)/2) √(1 + 1/S). A calibrated sampler
    then covers ``level`` for every S >= 2 (the naive k = 1 gives 0.623 at S = 8; docs/design.md §9)."""
    return student_t_quantile((1 + level) / 2, S - 1) * (1 + 1 / S) ** 0.5


def source_mask(truth: torch.Tensor, fraction: float = 0.01) -> torch.Tensor:
    """Source pixels (B, N, N): truth above ``fraction`` of each image's peak."""
    peak = truth.flatten(start_dim=1).amax(dim=1).clamp_min(0)
    return truth > fraction * peak[:, None, None]


def interval_coverage(mean: torch.Tensor, std: torch.Tensor, truth: torch.Tensor, level: float, S: int,
                      scale: float = 1.0, mask: torch.Tensor = None) -> torch.Tensor:
    """Fraction of pixels (of ``mask``, if given; NaN where it is empty) whose truth lies in μ̂ ± scale · k σ̂,
    k the S-corrected factor of the central ``level`` interval (``interval_halfwidth_factor``), (B,)."""
    inside = ((truth - mean).abs() <= scale * interval_halfwidth_factor(level, S) * std).to(mean.dtype)
    if mask is None:
        return _pixel_mean(inside)
    m = mask.to(mean.dtype)
    n = m.flatten(start_dim=1).sum(dim=1)
    return torch.where(n > 0, (inside * m).flatten(start_dim=1).sum(dim=1) / n.clamp_min(1), float("nan"))


def coverage(samples: torch.Tensor, truth: torch.Tensor, level: float,
             mask: torch.Tensor = None) -> torch.Tensor:
    """``interval_coverage`` of the samples' own μ̂ and σ̂, (B,)."""
    _check(samples, truth)
    mu, var = _mean_std(samples)
    return interval_coverage(mu, var.sqrt(), truth, level, samples.shape[1], mask=mask)


UNCERTAINTY_METRICS = ("sre", "sre_paper", "cov68", "cov95", "cov68_src", "cov95_src")


def all_metrics(samples: torch.Tensor, truth: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every metric of docs/design.md §6 as (B,) tensors; uncertainty ones are NaN when S = 1. Coverage is over
    all pixels and over source pixels (``_src``: truth above 1% of its peak), at the sampler's own S."""
    out = {"mse": mse(samples, truth), "mse_mean": mse_mean(samples, truth)}
    out["psnr"] = psnr_from_mse(out["mse"])
    out["snr"] = snr(samples, truth)
    if samples.shape[1] >= 2:
        src = source_mask(truth)
        out.update(sre=sre(samples, truth), sre_paper=sre_paper(samples, truth),
                   cov68=coverage(samples, truth, 0.68), cov95=coverage(samples, truth, 0.95),
                   cov68_src=coverage(samples, truth, 0.68, src), cov95_src=coverage(samples, truth, 0.95, src))
    else:
        nan = torch.full_like(out["mse"], float("nan"))
        out.update({k: nan for k in UNCERTAINTY_METRICS})
    return out


FAINT_LEVEL = 0.05  # faint emission: below this fraction of the peak (dynamic range, faint-flux recovery)


def dynamic_range(image: torch.Tensor, reference: torch.Tensor, source_level: float = 0.01,
                  faint_level: float = FAINT_LEVEL) -> dict[str, float]:
    """Peak over off-source rms of ``image`` (N, N), and its flux in faint emission, both located by a
    ``reference`` image (N, N; CLEAN's restored image): on-source where reference > ``source_level`` of its
    peak, faint where on-source and below ``faint_level`` of it. Same units in, the ratio and flux (sum)
    out; the rms is NaN if no pixel is off-source."""
    ref = reference.double()
    peak_ref = float(ref.max())
    source = ref > source_level * peak_ref
    faint = source & (ref < faint_level * peak_ref)
    img = image.double()
    off = img[~source]
    rms = float(off.pow(2).mean().sqrt()) if off.numel() else float("nan")
    return {"peak": float(img.max()), "off_source_rms": rms, "dynamic_range": float(img.max()) / rms if rms > 0
            else float("nan"), "faint_flux": float(img[faint].sum()), "n_faint_pixels": int(faint.sum())}


def gaussian_blur(image: torch.Tensor, fwhm_pixels: float) -> torch.Tensor:
    """image (N, N) convolved with a unit-sum circular Gaussian of FWHM ``fwhm_pixels`` (by FFT, on a grid padded
    to 2N so nothing wraps); itself for FWHM 0."""
    if fwhm_pixels <= 0:
        return image
    N = image.shape[-1]
    s = fwhm_pixels / math.sqrt(8 * math.log(2))
    f = torch.fft.fftfreq(2 * N, dtype=torch.float64)
    kernel = torch.exp(-2 * math.pi ** 2 * s ** 2 * (f[:, None] ** 2 + f[None, :] ** 2))
    return torch.fft.ifft2(torch.fft.fft2(image.double(), s=(2 * N, 2 * N)) * kernel).real[:N, :N]


def nxcorr(image: torch.Tensor, truth: torch.Tensor, fwhm_pixels: float = 0.0) -> float:
    """ρ_NX: the normalised cross-correlation Σ (a - ā)(b - b̄) / (n σ_a σ_b) of two images (N, N) on one grid,
    both blurred to ``fwhm_pixels`` (``gaussian_blur``), at the best circular shift (the EHT's habit: the
    absolute position is not measured by closures). 1 for identical images up to a shift and a scale."""
    a, b = (gaussian_blur(x.double(), fwhm_pixels) for x in (image, truth))
    a, b = (x - x.mean() for x in (a, b))
    norm = float(a.norm() * b.norm())
    if not norm > 0:
        return float("nan")
    return float(torch.fft.ifft2(torch.fft.fft2(a) * torch.conj(torch.fft.fft2(b))).real.max()) / norm

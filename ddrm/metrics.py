"""Per-observation metrics (design.md §6), vectorised over a batch.

Inputs are in image space [0, 1]: samples x̂ (B, S, N, N), truth x (B, N, N).
μ̂ and σ̂² are the mean and the unbiased variance over the S samples.
"""

from __future__ import annotations

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


def coverage(samples: torch.Tensor, truth: torch.Tensor, k: float) -> torch.Tensor:
    """Fraction of pixels with |x - μ̂| <= k σ̂, (B,)."""
    _check(samples, truth)
    mu, var = _mean_std(samples)
    return _pixel_mean(((truth - mu).abs() <= k * var.sqrt()).to(samples.dtype))


def all_metrics(samples: torch.Tensor, truth: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every metric of design.md §6 as (B,) tensors; uncertainty ones are NaN when S = 1."""
    out = {"mse": mse(samples, truth), "mse_mean": mse_mean(samples, truth)}
    out["psnr"] = psnr_from_mse(out["mse"])
    out["snr"] = snr(samples, truth)
    if samples.shape[1] >= 2:
        out.update(sre=sre(samples, truth), sre_paper=sre_paper(samples, truth),
                   cov68=coverage(samples, truth, 1.0), cov95=coverage(samples, truth, 2.0))
    else:
        nan = torch.full_like(out["mse"], float("nan"))
        out.update(sre=nan, sre_paper=nan, cov68=nan, cov95=nan)
    return out

"""Preparing real images for the prior: checks, centre crop or resampling to N, normalisation.

Image space is [0, 1] (docs/design.md §1): x = clip(x_raw, 0, ∞) / scale, with scale the image's
own peak (``"max"``) or one value for the whole dataset (``"global"``), then clipped to 1.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

FIT_MODES = ("crop", "resample")
NORMALISATIONS = ("max", "global")


def image_problem(x: torch.Tensor) -> Optional[str]:
    """Why x cannot be a training image (None if it can). Leading length-1 axes are allowed."""
    while x.ndim > 2 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 2:
        return f"expected a 2-D image, got shape {tuple(x.shape)}"
    if min(x.shape) < 2:
        return f"image too small: shape {tuple(x.shape)}"
    if not torch.isfinite(x).all():
        return "image contains NaN or inf pixels"
    if not (x > 0).any():
        return "image has no positive pixels (all zero)"
    return None


def as_image(x: torch.Tensor) -> torch.Tensor:
    """Squeeze leading length-1 axes and check (``image_problem``): (H, W) float32, else ValueError."""
    problem = image_problem(x)
    if problem is not None:
        raise ValueError(problem)
    while x.ndim > 2:
        x = x[0]
    return x.float()


def centre_crop_or_pad(x: torch.Tensor, N: int) -> torch.Tensor:
    """(H, W) → (N, N): crop or zero-pad symmetrically so pixel (H//2, W//2) lands on (N//2, N//2)."""
    out = torch.zeros(N, N, dtype=x.dtype)
    src, dst = [], []
    for size in x.shape:
        start = size // 2 - N // 2  # source index placed at output index 0
        lo, hi = max(start, 0), min(start + N, size)
        src.append(slice(lo, hi))
        dst.append(slice(lo - start, hi - start))
    out[dst[0], dst[1]] = x[src[0], src[1]]
    return out


def resample(x: torch.Tensor, N: int) -> torch.Tensor:
    """(H, W) → (N, N): centre-crop to a square of side min(H, W), then antialiased bilinear resampling."""
    side = min(x.shape)
    square = centre_crop_or_pad(x, side) if x.shape[0] != x.shape[1] else x
    if side == N:
        return square.clone()
    return F.interpolate(square[None, None], size=(N, N), mode="bilinear", antialias=True, align_corners=False)[0, 0]


def fit_to_size(x: torch.Tensor, N: int, mode: str) -> torch.Tensor:
    """``crop`` (centre crop or pad) or ``resample`` an (H, W) image to (N, N)."""
    if mode == "crop":
        return centre_crop_or_pad(x, N)
    if mode == "resample":
        return resample(x, N)
    raise ValueError(f"unknown fit mode {mode!r}; choose one of {FIT_MODES}")


def normalise(x: torch.Tensor, scale: Optional[float] = None) -> torch.Tensor:
    """x_img = min(max(x, 0) / scale, 1), scale = the image's peak when None. (…, N, N) → same."""
    x = x.clamp_min(0)
    peak = x.amax(dim=(-2, -1), keepdim=True) if scale is None else torch.as_tensor(scale, dtype=x.dtype)
    if (peak <= 0).any():
        raise ValueError("cannot normalise an image with no positive pixels")
    return (x / peak).clamp_max(1)

"""A ring's diameter and brightness asymmetry, measured on an image (the EHT's image-domain habit, simplified).

Radial profile about a centre: the mean brightness in annuli [k, k + 1) pixels. Centre c: of the centres within
``search`` pixels of the flux centroid (pixels above ``floor`` × the peak), in half-pixel steps, the one
whose profile peaks highest (the sharpest ring: a lopsided crescent pulls its centroid off the ring's
centre). Radius r: that profile's peak, refined by the parabola through it and its two neighbours. Diameter d = 2 r × the pixel scale. Asymmetry: the position angle (East of North) of the
brightness-weighted direction Σ I (x - c) / Σ I over the annulus |x - c| ∈ [r/2, 3r/2], and its amplitude
(0: uniform ring, 1: all flux on one side). Row r runs North, column c West (the imaging's orientation).
"""

from __future__ import annotations

import math

import torch


def ring_fit(image: torch.Tensor, pixel_scale: float, floor: float = 0.1, search: int = 6) -> dict:
    """{"diameter", "centre_pixel" (row, col), "brightest_pa_deg", "asymmetry"} of an image (N, N); the
    diameter in the unit of ``pixel_scale``."""
    img = image.double().clamp_min(0)
    N = img.shape[-1]
    rows, cols = torch.meshgrid(torch.arange(N, dtype=torch.float64), torch.arange(N, dtype=torch.float64),
                                indexing="ij")
    bright = torch.where(img > floor * float(img.max()), img, torch.zeros_like(img))
    total = float(bright.sum())
    if not total > 0:
        raise ValueError("an empty image has no ring")
    r_cen, c_cen = float((bright * rows).sum()) / total, float((bright * cols).sum()) / total

    def profile_about(r0: float, c0: float) -> torch.Tensor:
        bins = torch.floor(torch.hypot(rows - r0, cols - c0)).long().ravel()
        count = torch.bincount(bins, minlength=2 * N).double()
        return (torch.bincount(bins, weights=img.ravel(), minlength=2 * N) / count.clamp_min(1))[:N // 2]

    steps = [0.5 * k for k in range(-2 * search, 2 * search + 1)]
    def contrast(p: torch.Tensor) -> float:
        return float(p[2:].max() - p[0])

    best = max(((contrast(profile_about(r_cen + dr, c_cen + dc)), r_cen + dr, c_cen + dc)
                for dr in steps for dc in steps))
    r0, c0 = best[1], best[2]
    radius = torch.hypot(rows - r0, cols - c0)
    profile = profile_about(r0, c0)
    k = int(torch.argmax(profile[2:-1])) + 2
    a, b, c = (float(profile[j]) for j in (k - 1, k, k + 1))
    shift = 0.5 * (a - c) / (a - 2 * b + c) if (a - 2 * b + c) != 0 else 0.0
    r = k + 0.5 + max(-0.5, min(0.5, shift))  # bin k holds radii [k, k + 1)
    band = (radius >= r / 2) & (radius <= 1.5 * r)
    w = torch.where(band, img, torch.zeros_like(img))
    dn, dw = float((w * (rows - r0)).sum()), float((w * (cols - c0)).sum())  # North, West components
    pa = math.degrees(math.atan2(-dw, dn)) % 360  # East of North: East is -West
    return {"diameter": 2 * r * pixel_scale, "centre_pixel": (r0, c0), "brightest_pa_deg": pa,
            "asymmetry": math.hypot(dn, dw) / max(float(w.sum()) * r, 1e-300)}

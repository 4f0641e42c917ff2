"""Synthetic radio galaxies: FR I, FR II, compact and bent-tail sources, seeded and exact.

Each source is a sum of M elliptical Gaussian components c with flux F_c, centre μ_c and
intrinsic covariance Σ_c = R(φ_c) diag(a_c², b_c²) R(φ_c)ᵀ. Convolution with a circular
Gaussian beam of std σ_b = FWHM / (2√(2 ln 2)) is exact and analytic:

    x(p) = Σ_c F_c / (2π √det Σ'_c) · exp(-½ (p - μ_c)ᵀ Σ'_c⁻¹ (p - μ_c)),  Σ'_c = Σ_c + σ_b² I,

so no component is narrower than the beam. Pixel p = (col, row) with the source frame
centred on pixel (N//2, N//2) plus a random shift. Optional FIRST-like noise: add
n ~ N(0, noise_std²) after peak normalisation, set pixels below clip_sigma·noise_std to 0,
and normalise the peak to 1 again. Images are in image space [0, 1], float32, (B, N, N).

All randomness is drawn from the generator passed in, parameters first, so the images do
not depend on ``render_chunk``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch

from ddrm.config import Config

MORPHOLOGIES: tuple[str, ...] = ("fr1", "fr2", "compact", "bent")
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
SLOTS_PER_SIDE = 7
NUM_COMPONENTS = 1 + 2 * SLOTS_PER_SIDE  # a core and two sides


@dataclass(frozen=True)
class GalaxyConfig(Config):
    """Generator settings. Sizes are fractions of N (half-extent of the source); beam in pixels.

    The default beam, 2.8 px, is FIRST's 5" at 1.8"/px.
    """

    beam_fwhm_px: float = 2.8
    weights: tuple[float, float, float, float] = (0.35, 0.35, 0.15, 0.15)  # MORPHOLOGIES order
    size_min: float = 0.12
    size_max: float = 0.40
    max_shift: float = 0.06
    noise_std: float = 0.0
    clip_sigma: float = 3.0

    def __post_init__(self) -> None:
        if not self.beam_fwhm_px > 0:
            raise ValueError(f"beam_fwhm_px must be positive, got {self.beam_fwhm_px}")
        if len(self.weights) != len(MORPHOLOGIES) or min(self.weights) < 0 or sum(self.weights) <= 0:
            raise ValueError(f"weights must be {len(MORPHOLOGIES)} non-negative numbers, not all zero")
        if not 0 < self.size_min <= self.size_max <= 0.5:
            raise ValueError("need 0 < size_min <= size_max <= 0.5")
        if not 0 <= self.max_shift <= 0.25 or self.noise_std < 0 or self.clip_sigma < 0:
            raise ValueError("need 0 <= max_shift <= 0.25, noise_std >= 0 and clip_sigma >= 0")



class Galaxies(NamedTuple):
    """images (B, N, N) in [0, 1]; labels (B,) indexes MORPHOLOGIES; centre (B, 2) core (col, row) px;
    extent (B,) the source half-extent in px."""

    images: torch.Tensor
    labels: torch.Tensor
    centre: torch.Tensor
    extent: torch.Tensor


class _Components(NamedTuple):
    t: torch.Tensor  # (B, M) position along the source axis, px
    s: torch.Tensor  # (B, M) position across the axis, px
    major: torch.Tensor  # (B, M) intrinsic std along the axis, px
    minor: torch.Tensor  # (B, M) intrinsic std across the axis, px
    flux: torch.Tensor  # (B, M)


def _u(g: torch.Generator, shape, lo: float, hi: float) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(shape, generator=g, dtype=torch.float64)


def _sides(B: int, L: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fractions f (1, 2k) in (0, 1], the signed arm length (B, 2k) and a side brightness (B, 2k)."""
    k = SLOTS_PER_SIDE
    f = torch.arange(1, k + 1, dtype=torch.float64).div(k).repeat(2).unsqueeze(0)
    sign = torch.cat([torch.ones(k), -torch.ones(k)]).double().unsqueeze(0)
    arm = torch.cat([L.expand(B, k), (L * _u(g, (B, 1), 0.7, 1.0)).expand(B, k)], dim=1) * sign
    bright = torch.cat([torch.ones(B, k, dtype=torch.float64), _u(g, (B, 1), 0.3, 1.0).expand(B, k)], dim=1)
    return f, arm, bright


def _with_core(core_flux: torch.Tensor, core_size: torch.Tensor, side: _Components) -> _Components:
    z = torch.zeros_like(core_flux)
    return _Components(*(torch.cat([c, v], dim=1) for c, v in zip((z, z, core_size, core_size, core_flux), side)))


def _fr1(B: int, L: torch.Tensor, g: torch.Generator) -> _Components:
    """Core-brightened: a bright core and two jets fading and widening outwards."""
    f, arm, bright = _sides(B, L, g)
    t = f * arm
    flux = 0.6 * bright * torch.exp(-3.0 * f) * _u(g, t.shape, 0.7, 1.3)
    side = _Components(t, torch.zeros_like(t), 0.7 * arm.abs() / SLOTS_PER_SIDE, 0.3 + 0.12 * t.abs(), flux)
    return _with_core(_u(g, (B, 1), 0.8, 1.5), torch.zeros(B, 1, dtype=torch.float64), side)


def _fr2(B: int, L: torch.Tensor, g: torch.Generator) -> _Components:
    """Edge-brightened: a faint core, diffuse lobes and a compact hotspot at each end."""
    f, arm, bright = _sides(B, L, g)
    k = SLOTS_PER_SIDE
    hotspot = (f == 1.0).expand(B, 2 * k)
    lobe = (f >= 0.5) & ~hotspot
    t = torch.where(lobe, (0.55 + 0.4 * (f - 0.5) / 0.5) * arm, f * arm)
    L_abs = arm.abs()
    major = torch.where(hotspot, 0.3, torch.where(lobe, 0.15 * L_abs, 0.5 * L_abs / k))
    minor = torch.where(hotspot, 0.3, torch.where(lobe, _u(g, (B, 1), 0.08, 0.2) * L_abs, 0.3))
    flux = torch.where(hotspot, _u(g, (B, 2 * k), 0.5, 1.0),
                       torch.where(lobe, _u(g, (B, 2 * k), 0.3, 0.9) * (major * minor).sqrt() / 2, 0.02)) * bright
    side = _Components(t, _u(g, t.shape, -0.03, 0.03) * L_abs, major, minor, flux)
    return _with_core(_u(g, (B, 1), 0.02, 0.15), torch.zeros(B, 1, dtype=torch.float64), side)


def _compact(B: int, L: torch.Tensor, g: torch.Generator, beam_px: float) -> _Components:
    """A (marginally resolved) core, with a faint companion in about a third of cases."""
    k = SLOTS_PER_SIDE
    t = torch.zeros(B, 2 * k, dtype=torch.float64)
    t[:, 0] = _u(g, (B,), 1.5, 3.0) * beam_px
    flux = torch.zeros_like(t)
    flux[:, 0] = _u(g, (B,), 0.1, 0.5) * (torch.rand(B, generator=g, dtype=torch.float64) < 0.35)
    side = _Components(t, torch.zeros_like(t), torch.full_like(t, 0.3), torch.full_like(t, 0.3), flux)
    size = _u(g, (B, 1), 0.0, 1.2)
    return _with_core(torch.ones(B, 1, dtype=torch.float64), size, side)


def _bent(B: int, L: torch.Tensor, g: torch.Generator) -> _Components:
    """Bent-tail (wide- or narrow-angle tail): two jets swept back to the same side."""
    f, arm, bright = _sides(B, L, g)
    t = f * arm
    s = _u(g, (B, 1), 0.4, 1.2) * f ** 2 * arm.abs()
    flux = 0.6 * bright * torch.exp(-1.5 * f) * _u(g, t.shape, 0.7, 1.3)
    side = _Components(t, s, 0.8 * arm.abs() / SLOTS_PER_SIDE, 0.4 + 0.1 * t.abs(), flux)
    return _with_core(_u(g, (B, 1), 0.5, 1.0), torch.zeros(B, 1, dtype=torch.float64), side)


def _render(c: _Components, centre: torch.Tensor, theta: torch.Tensor, N: int, sigma_b: float) -> torch.Tensor:
    """Sum of beam-convolved Gaussians (module docstring) on the N×N pixel grid: (B, N, N) float32."""
    cos, sin = torch.cos(theta), torch.sin(theta)  # (B, 1); the axis direction (cos, sin) in (col, row)
    mu_x = centre[:, :1] + c.t * cos - c.s * sin
    mu_y = centre[:, 1:] + c.t * sin + c.s * cos
    a2, b2 = c.major ** 2, c.minor ** 2
    sxx = a2 * cos ** 2 + b2 * sin ** 2 + sigma_b ** 2
    syy = a2 * sin ** 2 + b2 * cos ** 2 + sigma_b ** 2
    sxy = (a2 - b2) * sin * cos
    det = sxx * syy - sxy ** 2
    amp = (c.flux / (2 * math.pi * det.sqrt())).float()
    # -q/2 = α dx² + γ dy² + β dx dy, built from per-component row and column vectors
    alpha, beta, gamma = (v.float()[..., None, None] for v in (-0.5 * syy / det, sxy / det, -0.5 * sxx / det))
    grid = torch.arange(N, dtype=torch.float32)
    dx = grid.view(1, 1, 1, N) - mu_x.float()[..., None, None]  # (B, M, 1, N) columns
    dy = grid.view(1, 1, N, 1) - mu_y.float()[..., None, None]  # (B, M, N, 1) rows
    log_g = (alpha * dx ** 2 + gamma * dy ** 2).add_((beta * dy) * dx)
    return torch.einsum("bmrc,bm->brc", log_g.exp_(), amp)


def _finish(x: torch.Tensor, config: GalaxyConfig, g: torch.Generator) -> torch.Tensor:
    """Peak-normalise, optionally add noise and sigma-clip, and peak-normalise again."""
    x = x / x.amax(dim=(-2, -1), keepdim=True)
    if config.noise_std > 0:
        x = x + config.noise_std * torch.randn(x.shape, generator=g, dtype=x.dtype)
        x = torch.where(x < config.clip_sigma * config.noise_std, 0.0, x)
        x = x / x.amax(dim=(-2, -1), keepdim=True)
    return x


def synth_galaxies(n: int, N: int, config: GalaxyConfig, generator: torch.Generator,
                   render_chunk: int = 32) -> Galaxies:
    """Draw n sources (module docstring): images (n, N, N) float32 in [0, 1] with peak 1."""
    if n < 1 or N < 8:
        raise ValueError(f"need n >= 1 and N >= 8, got n={n}, N={N}")
    g = generator
    w = torch.tensor(config.weights, dtype=torch.float64)
    labels = torch.multinomial(w / w.sum(), n, replacement=True, generator=g)
    L = N * _u(g, (n, 1), config.size_min, config.size_max)
    theta = _u(g, (n, 1), 0.0, math.pi)
    centre = N // 2 + N * _u(g, (n, 2), -config.max_shift, config.max_shift)
    drawn = (_fr1(n, L, g), _fr2(n, L, g), _compact(n, L, g, config.beam_fwhm_px), _bent(n, L, g))
    pick = labels.view(n, 1)
    comps = _Components(*(sum(torch.where(pick == i, d[j], 0.0) for i, d in enumerate(drawn)) for j in range(5)))
    sigma_b = config.beam_fwhm_px / FWHM_PER_SIGMA
    images = torch.cat([
        _render(_Components(*(v[i:i + render_chunk] for v in comps)), centre[i:i + render_chunk],
                theta[i:i + render_chunk], N, sigma_b)
        for i in range(0, n, render_chunk)])
    images = _finish(images, config, g).float()
    extent = torch.where(labels == MORPHOLOGIES.index("compact"), 0.0, L.squeeze(1))
    return Galaxies(images, labels, centre.float(), extent.float())

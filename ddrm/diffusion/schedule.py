"""Noise schedules of the DDPM (docs/design.md §4) and the K-step subsequence of DDRM (§5).

Conventions (those of DDPM/DDIM/DDRM code):
    β_t for t = 0..T-1,  ᾱ_t = Π_{i<=t} (1 - β_i),  ᾱ_{-1} = 1,
    x_t = √ᾱ_t x_0 + √(1-ᾱ_t) ε,      σ_t = √(1-ᾱ_t) / √ᾱ_t  (σ-space, x_t/√ᾱ_t = x_0 + σ_t ε).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import torch

from ddrm.config import Config

ScheduleKind = Literal["cosine", "linear"]


@dataclass(frozen=True)
class Schedule(Config):
    """A discrete DDPM noise schedule.

    kind: "cosine" (Nichol & Dhariwal 2021, offset ``cosine_s``, β clipped to ``max_beta``)
          or "linear" (β from ``beta_start`` to ``beta_end``, Ho et al. 2020).
    T:    number of diffusion steps.
    """

    kind: ScheduleKind = "cosine"
    T: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    cosine_s: float = 0.008
    max_beta: float = 0.999

    def __post_init__(self) -> None:
        if self.kind not in ("cosine", "linear"):
            raise ValueError(f"unknown schedule kind {self.kind!r}; expected 'cosine' or 'linear'")
        if self.T < 1:
            raise ValueError(f"T must be >= 1, got {self.T}")
        if not 0.0 < self.beta_start < self.beta_end < 1.0:
            raise ValueError("need 0 < beta_start < beta_end < 1")

    @cached_property
    def betas(self) -> torch.Tensor:
        """β_t, shape (T,), float64."""
        if self.kind == "linear":
            return torch.linspace(self.beta_start, self.beta_end, self.T, dtype=torch.float64)
        u = torch.arange(self.T + 1, dtype=torch.float64) / self.T
        f = torch.cos((u + self.cosine_s) / (1 + self.cosine_s) * math.pi / 2) ** 2
        return (1 - f[1:] / f[:-1]).clamp(max=self.max_beta)

    @cached_property
    def alpha_bar(self) -> torch.Tensor:
        """ᾱ_t = Π_{i<=t}(1-β_i), shape (T,), float64, strictly decreasing."""
        return torch.cumprod(1 - self.betas, dim=0)

    @cached_property
    def sigmas(self) -> torch.Tensor:
        """σ_t = √((1-ᾱ_t)/ᾱ_t), shape (T,), float64, strictly increasing."""
        return ((1 - self.alpha_bar) / self.alpha_bar).sqrt()

    def nearest_timestep(self, sigma: float) -> int:
        """The t whose σ_t is nearest ``sigma`` in log σ (σ > 0)."""
        return int((self.sigmas.log() - math.log(sigma)).abs().argmin())

    def alpha_bar_at(self, t: torch.Tensor) -> torch.Tensor:
        """ᾱ at integer timesteps t (any shape), with ᾱ_{-1} = 1 (the clean image)."""
        t = torch.as_tensor(t, dtype=torch.long)
        if bool(((t < -1) | (t >= self.T)).any()):
            raise ValueError(f"timesteps must lie in [-1, {self.T - 1}]")
        padded = torch.cat([torch.ones(1, dtype=torch.float64), self.alpha_bar])
        return padded[t + 1]

    def timesteps(self, K: int) -> torch.Tensor:
        """The K-step subsequence, ascending, shape (K,), long.

        seq_i = floor(i T / K), i = 0..K-1. When K divides T this is exactly the
        reference ``range(0, T, T // K)`` of DDIM/DDRM; otherwise it still has K steps.
        Samplers walk it in reverse and finish at t = -1 (ᾱ = 1).
        """
        if isinstance(K, bool) or not isinstance(K, int):
            raise ValueError(f"K must be an integer, got {K!r}")
        if K < 1 or K > self.T:
            raise ValueError(f"K must satisfy 1 <= K <= T={self.T}, got K={K}")
        return torch.div(torch.arange(K, dtype=torch.long) * self.T, K, rounding_mode="floor")


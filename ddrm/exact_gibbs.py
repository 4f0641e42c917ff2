"""Split Gibbs with the exact measurement equation, started from DDRM's samples on the gridded operator.

DDRM on the nearest-cell grid is fast and keeps the prior's structure where the data leave most of the
image to it; but each visibility moved by up to half a cell (a phase error up to π/2 at the field's edge),
so its samples do not fit the visibilities themselves. From those samples x⁽⁰⁾, ``iterations`` sweeps of

    prior step        z | x  ≈ N(D(x, ρ), ρ² I)     one denoiser evaluation at the timestep whose σ_t is ρ
    likelihood step   x | z, y  exact              (``likelihood.likelihood_step``: visibilities at their
                                                    own (u, v), perturb-and-optimise by CG)

with ρ falling geometrically from ``rho_max`` to ``rho_min``. Started at small ρ, the chain never has to
find the image from noise (where the one-evaluation prior step is a poor sampler of z | x: split Gibbs
from ρ = 10 collapses on sparse coverage), and only corrects what the grid got wrong. The last sweep
returns the likelihood step's mean given D(x, ρ_min). Denoiser evaluations per sample: ``iterations``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from .ddpm import Denoiser
from .likelihood import VisibilityLikelihood, likelihood_step
from .sampling import fill_normal
from .schedule import Schedule


@dataclass(frozen=True)
class ExactRefineConfig:
    """``iterations`` sweeps from ρ = ``rho_max`` to ``rho_min`` (σ-space, model units)."""

    rho_max: float = 0.05
    rho_min: float = 0.01
    iterations: int = 12

    def __post_init__(self) -> None:
        if not 0 < self.rho_min <= self.rho_max:
            raise ValueError(f"need 0 < rho_min <= rho_max, got {self.rho_min}, {self.rho_max}")
        if self.iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {self.iterations}")

    def to_dict(self) -> dict:
        return {"rho_max": self.rho_max, "rho_min": self.rho_min, "iterations": self.iterations}


@torch.no_grad()
def exact_refine(denoiser: Denoiser, x: torch.Tensor, like: VisibilityLikelihood, schedule: Schedule,
                 generators: Sequence[torch.Generator], config: ExactRefineConfig) -> torch.Tensor:
    """Samples x (B, S, N, N) model space (DDRM's, B = 1) -> (B, S, N, N) under the exact likelihood."""
    B, S, N, _ = x.shape
    n = config.iterations
    rhos = [config.rho_max * (config.rho_min / config.rho_max) ** (k / max(n - 1, 1)) for k in range(n)]
    for k, target in enumerate(rhos):
        t = schedule.nearest_timestep(target)
        rho, ab = float(schedule.sigmas[t]), float(schedule.alpha_bar[t])
        x0 = denoiser((ab ** 0.5 * x).reshape(B * S, 1, N, N).float(),
                      torch.full((B * S,), t, dtype=torch.long, device=x.device)).reshape(B, S, N, N).double()
        last = k == n - 1
        z = x0 if last else x0 + rho * fill_normal(generators, torch.empty_like(x0))
        x = likelihood_step(like, z, rho, generators, sample=not last)
    return x

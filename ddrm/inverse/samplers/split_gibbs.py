"""Annealed split Gibbs (after PnP-DM, Wu et al. 2024): a sampler of the posterior of y = H x + z under
the diffusion prior, batched over observations, behind the sampler protocol of :mod:`ddrm.inverse.samplers`.

It samples the joint π(x, z) ∝ p(z) N(x; z, ρ² I) p(y | x) by alternating, ``sweeps``·K times:

    prior step        z | x  ≈  N(D(x, ρ), ρ² I): Tweedie's mean, one denoiser evaluation at the timestep
                      whose σ_t is ρ, with the covariance ρ² I that bounds the true ρ² ∂D/∂x from above
                      and equals it on every coordinate whose prior variance λ ≫ ρ²
    likelihood step   x | z, y, exact through the SVD, per spectral coordinate (x̄ = Vᵀ x, ȳ = Σ⁻¹Uᵀy):
                        measured:    precision 1/ρ² + s_i²/σ_y²,  mean (z̄_i/ρ² + s_i² ȳ_i/σ_y²)/precision
                                     (σ_y = 0: x̄_i = ȳ_i exactly)
                        unmeasured:  x̄_i = z̄_i + ρ ε_i

ρ falls geometrically from ``rho_max`` to ``rho_min`` over the first ``anneal`` fraction of the
iterations and stays at ``rho_min`` for the rest. The output is the last x with its unmeasured
coordinates denoised, D(x, ρ_min) instead of D + ρ_min ξ: on the empty sky, where λ ≪ ρ_min², that
white noise is the prior step's over-estimate, and clipping to [0, 1] would turn it into a positive
bias; on coordinates with λ ≫ ρ_min² it changes the variance by (λ/(λ+ρ²))² ≈ 1. For a Gaussian prior the
chain's stationary variance on an unmeasured coordinate is λ + ρ⁴/(2λ + ρ²) (≤ λ + ρ²/2, exact as
ρ -> 0), and its x-marginal is the posterior under the prior smoothed by ρ_min.
Why not DDPM ancestral steps from ρ for the prior step (as PnP-DM's EDM steps): they drop the
(1 - σ'²/σ²)² Var(x₀ | x_t) term of the true reverse kernel; measured on the Gaussian prior they gave
0.64-0.89 of the posterior variance on noisy measured coordinates even with 30 steps per prior step.
Network evaluations per sample: sweeps · K. The defaults were kept on the validation split (docs/uncertainty.md,
"The settings"): a larger ρ_min or the ρ_min noise kept widens the intervals only as the mean degrades, or,
around the denoised chains' (Rao-Blackwellised) mean, by the added noise's constant width, not the posterior's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional, Sequence, Union

import torch

from ddrm.diffusion.ddpm import Denoiser, StepCallback
from ddrm.diffusion.schedule import Schedule
from ddrm.inverse.operators.base import SVDOperator
from ddrm.inverse.samplers.base import SamplerConfig, fill_normal, register, sigma_per_observation

__all__ = ["SplitGibbsConfig", "split_gibbs", "rho_timesteps"]


@dataclass(frozen=True)
class SplitGibbsConfig(SamplerConfig):
    """ρ from ``rho_max`` to ``rho_min`` (σ-space, model units [-1, 1]) over the first ``anneal`` of the
    ``sweeps``·K iterations, one denoiser evaluation each."""

    name: ClassVar[str] = "gibbs"
    rho_max: float = 10.0
    rho_min: float = 0.01
    anneal: float = 0.75
    sweeps: int = 8

    def __post_init__(self) -> None:
        if not 0 < self.rho_min <= self.rho_max:
            raise ValueError(f"need 0 < rho_min <= rho_max, got {self.rho_min}, {self.rho_max}")
        if not 0 < self.anneal <= 1:
            raise ValueError(f"anneal must lie in (0, 1], got {self.anneal}")
        if self.sweeps < 1:
            raise ValueError(f"sweeps must be >= 1, got {self.sweeps}")

    def nfe(self, K: int) -> int:
        """Denoiser evaluations per sample: one per Gibbs iteration, sweeps · K."""
        return self.sweeps * K


def rho_timesteps(config: SplitGibbsConfig, schedule: Schedule, K: int) -> list[int]:
    """The sweeps·K iterations' timesteps t_k: σ_{t_k} nearest the annealed ρ_k (ρ_k is then σ_{t_k}
    exactly, so both steps use the same ρ)."""
    total = config.sweeps * K
    n = max(1, round(config.anneal * total))
    rho = [config.rho_max * (config.rho_min / config.rho_max) ** (k / max(n - 1, 1)) for k in range(n)]
    rho += [config.rho_min] * (total - n)
    return [schedule.nearest_timestep(r) for r in rho]


@register(SplitGibbsConfig)
@torch.no_grad()
def split_gibbs(prior: Denoiser, y: torch.Tensor, op: SVDOperator, sigma_y: Union[float, torch.Tensor],
                config: SplitGibbsConfig, generators: Sequence[torch.Generator], *, K: int, S: int,
                callback: Optional[StepCallback] = None) -> torch.Tensor:
    """S posterior samples for each of B observations y (B, P) -> (B, S, N, N), sweeps·K Gibbs iterations
    (the callback is called once per K step, every ``sweeps`` iterations).

    prior: D(x_t (n, 1, N, N), t (n,)) -> x̂_0, with n = B·S, and its schedule. Device and dtype follow y.
    """
    B, D, N, schedule = y.shape[0], op.D, op.N, prior.schedule
    sigma = sigma_per_observation(sigma_y, B, y)  # (B, 1, 1)
    noiseless, sy = sigma == 0, sigma.clamp_min(1e-30)
    s = op.singulars.to(y)
    idx = op.measured.to(y.device)
    ybar = op.ybar(y)[:, None, :]  # (B, 1, M)

    def likelihood_step(zbar: torch.Tensor, rho: float, last: bool = False) -> torch.Tensor:
        xbar = zbar.clone() if last else zbar + rho * fill_normal(generators, torch.empty_like(zbar))
        prec = 1 / rho**2 + s**2 / sy**2  # (B, 1, M)
        mean = (zbar[..., idx] / rho**2 + s**2 * ybar / sy**2) / prec
        xm = mean + fill_normal(generators, torch.empty_like(mean)) / prec.sqrt()
        return xbar.index_copy_(-1, idx, torch.where(noiseless, ybar.expand_as(xm), xm))

    ts = rho_timesteps(config, schedule, K)
    sig = schedule.sigmas.tolist()
    xbar = likelihood_step(sig[ts[0]] * fill_normal(generators, y.new_empty(B, S, D)), sig[ts[0]])
    for k, t in enumerate(ts):
        ab = float(schedule.alpha_bar[t])
        x0 = prior((ab ** 0.5 * op.V(xbar)).reshape(B * S, 1, N, N),
                   torch.full((B * S,), t, dtype=torch.long, device=y.device))
        last = k == len(ts) - 1
        zbar = op.Vt(x0.reshape(B, S, N, N))
        if not last:
            zbar = zbar + sig[t] * fill_normal(generators, torch.empty_like(xbar))
        xbar = likelihood_step(zbar, sig[t], last)
        if callback is not None and (k + 1) % config.sweeps == 0:
            callback((k + 1) // config.sweeps, K)
    return op.V(xbar)

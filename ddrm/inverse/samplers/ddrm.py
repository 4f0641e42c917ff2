"""The DDRM sampler (Kawar et al. 2022, eq. 7-8; docs/design.md §5), batched over observations.

All work happens in σ-space spectral coordinates x̄ = Vᵀ x / √ᾱ_t of the operator's SVD.
At each of the K steps (t -> t', σ = σ_t, σ' = σ_{t'}, ε̄ = (x̄_t - x̂̄_0)/σ):

    unmeasured i:                x̄'_i = x̂̄_0 + √(1-η²) σ' ε̄_i + η σ' z_i
    measured, s_i σ' <  σ_y:     x̄'_i = x̂̄_0 + √(1-η²) σ' (ȳ_i - x̂̄_0)/(σ_y/s_i) + η σ' z_i
    measured, s_i σ' >= σ_y:     x̄'_i = (1-η_b) x̂̄_0 + η_b ȳ_i + √(σ'² - η_b² σ_y²/s_i²) z_i

with ȳ = Σ⁻¹ Uᵀ y and x_{t'} = √ᾱ_{t'} V x̄'. At the last step (σ' = 0) a noisy measured coordinate
is x̂̄_0 alone: the data enter only through the denoiser. ``data_step`` instead combines the two as
Gaussian estimates, x̄_i = (x̂̄_0 σ_y²/s_i² + ȳ_i σ²)/(σ² + σ_y²/s_i²) (σ bounds x̂̄_0's error), which is
continuous as σ_y -> 0 (where it gives ȳ, like the noiseless branch). σ_y is the std of the noise on each measured
coordinate of y (no hidden factor). Each observation b draws its noise z from its own
generator, so its samples do not depend on the batch it runs in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional, Sequence, Union

import torch

from ddrm.diffusion.ddpm import Denoiser, StepCallback
from ddrm.inverse.operators.base import SVDOperator
from ddrm.inverse.samplers.base import (SamplerConfig, fill_normal, make_generators, register, run_sampler,
                                        sigma_per_observation)

__all__ = ["DDRMConfig", "ddrm", "ddrm_sample", "make_generators"]


@dataclass(frozen=True)
class DDRMConfig(SamplerConfig):
    """DDRM's own settings: η (re-noising), η_b (trust in y), and the final ``data_step`` (off: the
    paper's algorithm). K and S are the caller's."""

    name: ClassVar[str] = "ddrm"
    eta: float = 0.85
    eta_b: float = 1.0
    data_step: bool = False

    def __post_init__(self) -> None:
        for field, v in (("eta", self.eta), ("eta_b", self.eta_b)):
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{field} must lie in [0, 1], got {v}")


@register(DDRMConfig)
@torch.no_grad()
def ddrm(prior: Denoiser, y: torch.Tensor, op: SVDOperator, sigma_y: Union[float, torch.Tensor], config: DDRMConfig,
         generators: Sequence[torch.Generator], *, K: int, S: int,
         callback: Optional[StepCallback] = None) -> torch.Tensor:
    """S DDRM samples for each of B observations y (B, P) -> (B, S, N, N) (the sampler protocol of
    :mod:`ddrm.inverse.samplers.base`; arguments checked by ``run_sampler``).

    prior: D(x_t (n, 1, N, N), t (n,)) -> x̂_0, with n = B·S, and its schedule. Device and dtype follow y.
    """
    eta, eta_b, schedule = config.eta, config.eta_b, prior.schedule
    B, D, N = y.shape[0], op.D, op.N
    sy = sigma_per_observation(sigma_y, B, y)
    s = op.singulars.to(y)
    idx = op.measured.to(y.device)
    ybar = op.ybar(y)[:, None, :]  # (B, 1, M)
    noise_std = sy / s  # (B, 1, M): σ_y / s_i

    seq = schedule.timesteps(K).flip(0)
    nxt = torch.cat([seq[1:], seq.new_tensor([-1])])
    ab, ab_next = schedule.alpha_bar_at(seq).tolist(), schedule.alpha_bar_at(nxt).tolist()

    z = fill_normal(generators, y.new_empty(B, S, D))
    sig_T = ((1 - ab[0]) / ab[0]) ** 0.5
    xbar = sig_T * z  # x̄_T: prior noise, measured coordinates centred on ȳ where y is less noisy
    xm = torch.where(sig_T * s >= sy, ybar + (sig_T**2 - noise_std**2).clamp_min(0).sqrt() * z[..., idx], xbar[..., idx])
    xbar.index_copy_(-1, idx, xm)

    c_eta = (1 - eta**2) ** 0.5
    for i, t in enumerate(seq.tolist()):
        sig, sig_n = ((1 - ab[i]) / ab[i]) ** 0.5, ((1 - ab_next[i]) / ab_next[i]) ** 0.5
        xt = (ab[i] ** 0.5) * op.V(xbar)  # (B, S, N, N)
        x0 = prior(xt.reshape(B * S, 1, N, N), torch.full((B * S,), t, dtype=torch.long, device=y.device))
        x0bar = op.Vt(x0.reshape(B, S, N, N))
        z = fill_normal(generators, z)
        new = x0bar + c_eta * sig_n * (xbar - x0bar) / sig + eta * sig_n * z
        x0m, zm = x0bar[..., idx], z[..., idx]
        less_noisy = sig_n * s < sy  # y is noisier than x_t': pull towards ȳ
        m_after = x0m + c_eta * sig_n * (ybar - x0m) / noise_std.clamp_min(1e-30) + eta * sig_n * zm
        if config.data_step and i == K - 1:
            m_after = (x0m * noise_std**2 + ybar * sig**2) / (sig**2 + noise_std**2)
        m_before = (1 - eta_b) * x0m + eta_b * ybar + (sig_n**2 - eta_b**2 * noise_std**2).clamp_min(0).sqrt() * zm
        xbar = new.index_copy_(-1, idx, torch.where(less_noisy, m_after, m_before))
        if callback is not None:
            callback(i + 1, K)
    return op.V(xbar)


def ddrm_sample(prior: Denoiser, y: torch.Tensor, op: SVDOperator, *, sigma_y: Union[float, torch.Tensor],
                generators: Sequence[torch.Generator], K: int, S: int = 1, eta: float = DDRMConfig.eta,
                eta_b: float = DDRMConfig.eta_b, callback: Optional[StepCallback] = None) -> torch.Tensor:
    """Keyword form of :func:`ddrm`: S samples for each observation y (B, P) -> (B, S, N, N)."""
    return run_sampler(prior, y, op, sigma_y, DDRMConfig(eta=eta, eta_b=eta_b), generators, K=K, S=S,
                       callback=callback)

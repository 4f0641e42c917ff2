"""The DDRM sampler (Kawar et al. 2022, eq. 7-8; design.md §5), batched over observations.

All work happens in σ-space spectral coordinates x̄ = Vᵀ x / √ᾱ_t of the operator's SVD.
At each of the K steps (t -> t', σ = σ_t, σ' = σ_{t'}, ε̄ = (x̄_t - x̂̄_0)/σ):

    unmeasured i:                x̄'_i = x̂̄_0 + √(1-η²) σ' ε̄_i + η σ' z_i
    measured, s_i σ' <  σ_y:     x̄'_i = x̂̄_0 + √(1-η²) σ' (ȳ_i - x̂̄_0)/(σ_y/s_i) + η σ' z_i
    measured, s_i σ' >= σ_y:     x̄'_i = (1-η_b) x̂̄_0 + η_b ȳ_i + √(σ'² - η_b² σ_y²/s_i²) z_i

with ȳ = Σ⁻¹ Uᵀ y and x_{t'} = √ᾱ_{t'} V x̄'. σ_y is the std of the noise on each measured
coordinate of y (no hidden factor). Each observation b draws its noise z from its own
generator, so its samples do not depend on the batch it runs in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Union

import torch

from .ddpm import Denoiser, StepCallback
from .operators.base import SVDOperator
from .schedule import Schedule


@dataclass(frozen=True)
class DDRMConfig:
    """Sampler settings: K steps, η (re-noising), η_b (trust in y), S samples per observation."""

    K: int = 50
    eta: float = 0.85
    eta_b: float = 1.0
    samples: int = 4

    def __post_init__(self) -> None:
        if isinstance(self.K, bool) or not isinstance(self.K, int) or self.K < 1:
            raise ValueError(f"K must be an integer >= 1, got {self.K!r}")
        _check_unit("eta", self.eta)
        _check_unit("eta_b", self.eta_b)
        if self.samples < 1:
            raise ValueError(f"samples must be >= 1, got {self.samples}")


def _check_unit(name: str, v: float) -> None:
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {v}")


def make_generators(seeds: Sequence[int], device: Union[str, torch.device] = "cpu") -> list[torch.Generator]:
    """One seeded generator per observation, on ``device``."""
    return [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]


def _sigma_y(sigma_y: Union[float, torch.Tensor], B: int, like: torch.Tensor) -> torch.Tensor:
    sy = torch.as_tensor(sigma_y, dtype=like.dtype, device=like.device).reshape(-1)
    if sy.numel() not in (1, B):
        raise ValueError(f"sigma_y must be a scalar or have one value per observation ({B}), got {sy.numel()}")
    if not bool(torch.isfinite(sy).all()) or bool((sy < 0).any()):
        raise ValueError(f"sigma_y must be finite and >= 0, got {sigma_y}")
    return sy.expand(B).reshape(B, 1, 1)


def _noise(generators: Sequence[torch.Generator], out: torch.Tensor) -> torch.Tensor:
    """Fill out[b] (S, D) from generators[b]."""
    for b, g in enumerate(generators):
        out[b].normal_(generator=g)
    return out


@torch.no_grad()
def ddrm_sample(
    denoiser: Denoiser,
    y: torch.Tensor,
    op: SVDOperator,
    schedule: Schedule,
    generators: Sequence[torch.Generator],
    *,
    sigma_y: Union[float, torch.Tensor],
    K: int,
    S: int = 1,
    eta: float = DDRMConfig.eta,
    eta_b: float = DDRMConfig.eta_b,
    callback: Optional[StepCallback] = None,
) -> torch.Tensor:
    """Draw S DDRM posterior samples for each of B observations y (B, P) -> (B, S, N, N).

    denoiser: D(x_t (n, 1, N, N), t (n,)) -> x̂_0, with n = B·S.
    sigma_y:  float or (B,) noise std per measured coordinate (model space), >= 0.
    generators: B generators on y's device (see :func:`make_generators`).
    callback: called as callback(step, K) after every step. Device and dtype follow y.
    """
    DDRMConfig(K=K, eta=eta, eta_b=eta_b, samples=S)  # validates
    if y.dim() != 2:
        raise ValueError(f"y must have shape (B, {op.num_outputs}), got {tuple(y.shape)}")
    op.check_measurements(y)
    B, D, N = y.shape[0], op.D, op.N
    if len(generators) != B:
        raise ValueError(f"need one generator per observation: {B} observations, {len(generators)} generators")
    sy = _sigma_y(sigma_y, B, y)
    s = op.singulars.to(y)
    idx = op.measured.to(y.device)
    ybar = op.ybar(y)[:, None, :]  # (B, 1, M)
    noise_std = sy / s  # (B, 1, M): σ_y / s_i

    seq = schedule.timesteps(K).flip(0)
    nxt = torch.cat([seq[1:], seq.new_tensor([-1])])
    ab, ab_next = schedule.alpha_bar_at(seq).tolist(), schedule.alpha_bar_at(nxt).tolist()

    z = _noise(generators, y.new_empty(B, S, D))
    sig_T = ((1 - ab[0]) / ab[0]) ** 0.5
    xbar = sig_T * z  # x̄_T: prior noise, measured coordinates centred on ȳ where y is less noisy
    xm = torch.where(sig_T * s >= sy, ybar + (sig_T**2 - noise_std**2).clamp_min(0).sqrt() * z[..., idx], xbar[..., idx])
    xbar.index_copy_(-1, idx, xm)

    c_eta = (1 - eta**2) ** 0.5
    for i, t in enumerate(seq.tolist()):
        sig, sig_n = ((1 - ab[i]) / ab[i]) ** 0.5, ((1 - ab_next[i]) / ab_next[i]) ** 0.5
        xt = (ab[i] ** 0.5) * op.V(xbar)  # (B, S, N, N)
        x0 = denoiser(xt.reshape(B * S, 1, N, N), torch.full((B * S,), t, dtype=torch.long, device=y.device))
        x0bar = op.Vt(x0.reshape(B, S, N, N))
        z = _noise(generators, z)
        new = x0bar + c_eta * sig_n * (xbar - x0bar) / sig + eta * sig_n * z
        x0m, zm = x0bar[..., idx], z[..., idx]
        less_noisy = sig_n * s < sy  # y is noisier than x_t': pull towards ȳ
        m_after = x0m + c_eta * sig_n * (ybar - x0m) / noise_std.clamp_min(1e-30) + eta * sig_n * zm
        m_before = (1 - eta_b) * x0m + eta_b * ybar + (sig_n**2 - eta_b**2 * noise_std**2).clamp_min(0).sqrt() * zm
        xbar = new.index_copy_(-1, idx, torch.where(less_noisy, m_after, m_before))
        if callback is not None:
            callback(i + 1, K)
    return op.V(xbar)

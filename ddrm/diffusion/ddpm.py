"""DDPM training loss, EMA, and unconditional sampling (docs/design.md §4).

Samplers see one kind of object, a *denoiser* D(x_t, t) -> x̂_0 with x_t (n, C, N, N) and t (n,)
long timesteps, which carries its noise ``schedule`` (the :class:`Denoiser` protocol; the posterior
samplers call it ``prior``). :class:`EpsDenoiser` turns an ε-prediction network into one; it is the
only place that knows the network's parametrisation:

    x̂_0 = (x_t - √(1-ᾱ_t) ε_θ(x_t, t)) / √ᾱ_t.
"""

from __future__ import annotations

import copy
from typing import Callable, Optional, Protocol, runtime_checkable

import torch
from torch import nn

from ddrm.diffusion.schedule import Schedule


@runtime_checkable
class Denoiser(Protocol):
    """x̂_0 = D(x_t (n, C, N, N), t (n,)) in model space, with the schedule that defines t."""

    schedule: Schedule

    def __call__(self, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor: ...


StepCallback = Callable[[int, int], None]


def _bcast(a: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(n,) -> (n, 1, 1, 1) in like's dtype/device."""
    return a.to(device=like.device, dtype=like.dtype).reshape(-1, *([1] * (like.dim() - 1)))


def ddpm_loss(model: nn.Module, x0: torch.Tensor, schedule: Schedule, generator: torch.Generator,
              t: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The simple ε-prediction loss  E_{t,ε} ‖ε - ε_θ(√ᾱ_t x_0 + √(1-ᾱ_t) ε, t)‖²  (mean over pixels).

    x0: (B, C, N, N) in model space [-1, 1]; t ~ U{0..T-1} unless given (B,) (a non-uniform t only moves
    the network's capacity between noise levels: each level's optimum is unchanged); ε ~ N(0, I) from
    ``generator``.
    """
    if t is None:
        t = torch.randint(0, schedule.T, (x0.shape[0],), generator=generator, device=generator.device)
    t = t.to(x0.device)
    eps = torch.randn(x0.shape, generator=generator, device=generator.device, dtype=x0.dtype).to(x0.device)
    ab = _bcast(schedule.alpha_bar[t.cpu()], x0)
    xt = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
    return torch.mean((eps - model(xt, t)) ** 2)


class EMA:
    """Exponential moving average of a model's parameters: θ_ema <- d θ_ema + (1-d) θ."""

    def __init__(self, model: nn.Module, decay: float = 0.999) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for e, p in zip(self.model.parameters(), model.parameters()):
            e.lerp_(p.detach(), 1 - self.decay)
        for e, b in zip(self.model.buffers(), model.buffers()):
            e.copy_(b)

    def state_dict(self) -> dict:
        return self.model.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state)


class EpsDenoiser:
    """D(x_t, t) = (x_t - √(1 - ᾱ_t) ε_θ(x_t, t)) / √ᾱ_t -> x̂_0 from an ε-network; ``clip`` clamps x̂_0 to
    the model range [-1, 1].

    The network runs on its own device and dtype; x̂_0 comes back on x_t's. So a prior on an actor's GPU
    serves a likelihood that stays on the CPU (the ducc0 NUFFT of the imaging stage), and no copy is made
    where the two already agree.
    """

    def __init__(self, model: nn.Module, schedule: Schedule, clip: bool = True) -> None:
        self.model, self.schedule, self.clip = model, schedule, clip
        first = next(model.parameters(), None) if isinstance(model, nn.Module) else None
        self.device = first.device if first is not None else torch.device("cpu")
        self.dtype = first.dtype if first is not None else None  # a network without weights keeps x_t's

    @torch.no_grad()
    def __call__(self, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        ab = _bcast(self.schedule.alpha_bar[t.cpu()], xt)
        eps = self.model(xt.to(self.device, self.dtype or xt.dtype), t.to(self.device)).to(xt)
        x0 = (xt - (1 - ab).sqrt() * eps) / ab.sqrt()
        return x0.clamp(-1, 1) if self.clip else x0


@torch.no_grad()
def sample_ddim(
    denoiser: Denoiser,
    x_T: torch.Tensor,
    schedule: Schedule,
    K: int,
    *,
    eta: float = 0.0,
    generator: Optional[torch.Generator] = None,
    callback: Optional[StepCallback] = None,
) -> torch.Tensor:
    """DDIM (Song et al. 2021) over the K-step subsequence; eta = 0 is deterministic.

    x_{t'} = √ᾱ_{t'} x̂_0 + √(1-ᾱ_{t'}-σ²) ε̂ + σ z,  σ = η √((1-ᾱ_{t'})/(1-ᾱ_t)) √(1-ᾱ_t/ᾱ_{t'}).
    x_T: (n, C, N, N) ~ N(0, I). Returns x_0 (n, C, N, N).
    """
    if eta > 0 and generator is None:
        raise ValueError("eta > 0 needs a generator")
    seq = schedule.timesteps(K).flip(0).tolist()
    x = x_T
    for i, t in enumerate(seq):
        t_next = seq[i + 1] if i + 1 < len(seq) else -1
        ab, ab_next = (float(schedule.alpha_bar_at(torch.tensor(s))) for s in (t, t_next))
        x0 = denoiser(x, torch.full((x.shape[0],), t, dtype=torch.long, device=x.device))
        eps = (x - ab**0.5 * x0) / (1 - ab) ** 0.5
        sigma = eta * ((1 - ab_next) / (1 - ab) * (1 - ab / ab_next)) ** 0.5
        x = ab_next**0.5 * x0 + max(1 - ab_next - sigma**2, 0.0) ** 0.5 * eps
        if sigma > 0:
            x = x + sigma * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        if callback is not None:
            callback(i + 1, len(seq))
    return x


@torch.no_grad()
def sample_ancestral(
    denoiser: Denoiser,
    x_T: torch.Tensor,
    schedule: Schedule,
    generator: torch.Generator,
    *,
    callback: Optional[StepCallback] = None,
) -> torch.Tensor:
    """Ancestral DDPM sampling over all T steps (Ho et al. 2020, eq. 6-7):

    x_{t-1} = μ̃_t(x_t, x̂_0) + √β̃_t z,  μ̃ = √ᾱ_{t-1} β_t/(1-ᾱ_t) x̂_0 + √α_t (1-ᾱ_{t-1})/(1-ᾱ_t) x_t,
    β̃_t = (1-ᾱ_{t-1})/(1-ᾱ_t) β_t, and no noise at the last step.
    """
    x = x_T
    for t in reversed(range(schedule.T)):
        ab = float(schedule.alpha_bar[t])
        ab_prev = float(schedule.alpha_bar_at(torch.tensor(t - 1)))
        beta = float(schedule.betas[t])
        x0 = denoiser(x, torch.full((x.shape[0],), t, dtype=torch.long, device=x.device))
        mean = ab_prev**0.5 * beta / (1 - ab) * x0 + (1 - beta) ** 0.5 * (1 - ab_prev) / (1 - ab) * x
        if t > 0:
            var = (1 - ab_prev) / (1 - ab) * beta
            mean = mean + var**0.5 * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        x = mean
        if callback is not None:
            callback(schedule.T - t, schedule.T)
    return x

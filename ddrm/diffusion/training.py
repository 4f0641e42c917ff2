"""One DDPM training step, its learning-rate schedule and radio-image augmentation (pure; no I/O).

Step s: x_0 ← augment(batch) (and ``shrink`` into empty sky, the scale augmentation); loss = ddpm_loss (docs/design.md §4); AdamW with
lr(s) = lr · min(1, (s+1)/warmup) · ½(1 + cos(π · clip((s - warmup)/(S - warmup), 0, 1))),
gradients clipped to a global norm, then the EMA update θ_ema ← d θ_ema + (1 - d) θ.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from ddrm.config import Config
from ddrm.diffusion.ddpm import EMA, ddpm_loss
from ddrm.diffusion.schedule import Schedule


@dataclass(frozen=True)
class OptimConfig(Config):
    """AdamW with linear warm-up and cosine decay over ``steps``; gradient clipping; EMA."""

    steps: int = 1000
    lr: float = 1e-4
    weight_decay: float = 0.0
    warmup_steps: int = 100
    grad_clip: float = 1.0
    ema_decay: float = 0.999

    def __post_init__(self) -> None:
        if self.steps < 1 or self.warmup_steps < 0:
            raise ValueError(f"need steps >= 1 and warmup_steps >= 0, got {self.steps}, {self.warmup_steps}")
        if not self.lr > 0 or self.weight_decay < 0 or not self.grad_clip > 0:
            raise ValueError("need lr > 0, weight_decay >= 0 and grad_clip > 0")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must lie in [0, 1), got {self.ema_decay}")



def lr_at(step: int, config: OptimConfig) -> float:
    """The learning rate of step ``step`` (0-based): module docstring."""
    warm = min(1.0, (step + 1) / config.warmup_steps) if config.warmup_steps else 1.0
    span = max(config.steps - config.warmup_steps, 1)
    progress = min(max((step - config.warmup_steps) / span, 0.0), 1.0)
    return config.lr * warm * 0.5 * (1.0 + math.cos(math.pi * progress))


def augment(x: torch.Tensor, generator: torch.Generator, max_shift: int = 0) -> torch.Tensor:
    """Symmetries of the sky image prior: per image a random transpose, a 90° rotation k ∈ {0..3}
    (together all 8 flips/rotations) and a circular shift of up to ``max_shift`` px.
    x: (B, C, N, N) → (B, C, N, N)."""
    B = x.shape[0]
    draws = torch.randint(0, 8, (B,), generator=generator, device=generator.device).tolist()
    shifts = torch.randint(-max_shift, max_shift + 1, (B, 2), generator=generator,
                           device=generator.device).tolist()
    out = []
    for img, d, (dy, dx) in zip(x, draws, shifts):
        img = img.transpose(-1, -2) if d >= 4 else img
        img = torch.rot90(img, d % 4, dims=(-2, -1))
        out.append(torch.roll(img, (dy, dx), dims=(-2, -1)) if max_shift else img)
    return torch.stack(out)


def shrink(x: torch.Tensor, generator: torch.Generator, min_factor: float, prob: float) -> torch.Tensor:
    """Scale augmentation: with probability ``prob`` per image, the sky s = (x + 1)/2 ≥ 0 of x (B, C, n, n)
    (model space: sky 0 at x = -1) is resampled to m = round(f n) pixels a side, f log-uniform in
    [``min_factor``, 1] (antialiased bilinear), its total Σ s restored exactly (flux conserved), pasted at a
    uniform position into an empty n × n window, then scaled to its original peak (the imaging fits the
    flux scale, so the prior's images are peak-normalised; the shape, not the brightness, is what shrinks).
    A source then fills anything from ``min_factor`` to all of the window. → (B, C, n, n)."""
    if not 0 < min_factor <= 1 or not 0 <= prob <= 1:
        raise ValueError(f"need 0 < min_factor <= 1 and 0 <= prob <= 1, got {min_factor}, {prob}")
    B, n = x.shape[0], x.shape[-1]
    dev = generator.device
    draw = torch.rand(B, generator=generator, device=dev).tolist()
    logf = (torch.rand(B, generator=generator, device=dev) * math.log(min_factor)).tolist()
    corner = torch.rand(B, 2, generator=generator, device=dev).tolist()
    out = []
    for img, d, lf, (r, c) in zip(x, draw, logf, corner):
        m = max(1, round(n * math.exp(lf)))
        if d >= prob or m >= n:
            out.append(img)
            continue
        sky = ((img + 1) / 2).clamp_min(0)
        window = paste_shrunk(sky, m, int(r * (n - m + 1)), int(c * (n - m + 1)))
        peak = float(window.max())
        out.append(2 * (window * (float(sky.max()) / peak) if peak > 0 else window) - 1)
    return torch.stack(out)


def paste_shrunk(sky: torch.Tensor, m: int, row: int, col: int) -> torch.Tensor:
    """sky (C, n, n) ≥ 0 resampled to (C, m, m) (antialiased bilinear) with Σ restored exactly, placed with its
    corner at (row, col) in an empty (C, n, n) window: the total flux is conserved."""
    small = torch.nn.functional.interpolate(sky[None], size=(m, m), mode="bilinear", antialias=True,
                                            align_corners=False)[0].clamp_min(0)
    small = small * (sky.sum() / small.sum().clamp_min(1e-30))
    window = torch.zeros_like(sky)
    window[..., row:row + m, col:col + m] = small
    return window


def crop_batch_size(batch_size: int, crop_sizes: tuple[int, ...], size: int) -> int:
    """Images per step at crop ``size``: ``batch_size`` at ``crop_sizes[0]``, scaled by area so every
    step sees about the same number of pixels."""
    return max(1, round(batch_size * (crop_sizes[0] / size) ** 2))


def random_crops(x: torch.Tensor, size: int, generator: torch.Generator, background: float = -1.0) -> torch.Tensor:
    """Per image a uniformly placed ``size``² window of x (B, C, N, N) padded by ``size // 4`` of empty
    sky (``background``) on every side, so sources also appear near the window's edges, and windows
    larger than N (up to 1.5 N) are zero-padded fields. → (B, C, size, size)."""
    pad = size // 4
    N = x.shape[-1]
    if size > N + 2 * pad:
        raise ValueError(f"crop {size} is larger than the padded image ({N} + 2·{pad})")
    xp = torch.nn.functional.pad(x, (pad, pad, pad, pad), value=background)
    hi = N + 2 * pad - size + 1
    corners = torch.randint(0, hi, (x.shape[0], 2), generator=generator, device=generator.device).tolist()
    return torch.stack([img[..., r:r + size, c:c + size] for img, (r, c) in zip(xp, corners)])


def train_step(model: nn.Module, ema: EMA, optimizer: torch.optim.Optimizer, x0: torch.Tensor,
               schedule: Schedule, generator: torch.Generator, step: int, config: OptimConfig,
               autocast_dtype: Optional[torch.dtype] = None, t: Optional[torch.Tensor] = None) -> float:
    """One optimiser step on x0 (B, C, N, N) in model space [-1, 1]; returns the loss. ``t`` (B,): the
    timesteps to train at (default: uniform draws, ``ddpm_loss``).

    ``model`` may be DDP-wrapped; ``ema`` tracks the unwrapped module. ``autocast_dtype``
    (e.g. torch.bfloat16 on GPU) runs the forward pass in mixed precision.
    """
    for group in optimizer.param_groups:
        group["lr"] = lr_at(step, config)
    ctx = torch.autocast(x0.device.type, dtype=autocast_dtype) if autocast_dtype else nullcontext()
    with ctx:
        loss = ddpm_loss(model, x0, schedule, generator, t)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
    optimizer.step()
    ema.update(getattr(model, "module", model))
    return float(loss.detach())


def make_optimizer(model: nn.Module, config: OptimConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)

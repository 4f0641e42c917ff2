"""A toy second sampler, registered only by the tests that import this module: it returns the
least-squares image V Σ⁻¹ (Uᵀ y) on measured coordinates plus unit noise elsewhere, without any
denoiser call (so its rows are cheap and differ visibly from DDRM's)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ddrm.inverse.samplers import SamplerConfig, fill_normal, register


@dataclass(frozen=True)
class ToyConfig(SamplerConfig):
    name: ClassVar[str] = "toy"
    scale: float = 0.1


@register(ToyConfig)
def toy(prior, y, op, sigma_y, config, generators, *, K, S, callback=None):
    B = y.shape[0]
    xbar = config.scale * fill_normal(generators, y.new_empty(B, S, op.D))
    xbar[..., op.measured.to(y.device)] = op.ybar(y)[:, None, :]
    return op.V(xbar)

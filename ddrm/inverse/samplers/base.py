"""One signature for every posterior sampler of y = H x + z (k-diffusion's ``sampling.py`` habit).

A sampler is a function

    sampler(prior, y, op, sigma_y, config, generators, *, K, S, callback=None) -> x

with ``prior`` the denoiser D(x_t, t) -> x̂_0 carrying its ``schedule`` (``ddrm.diffusion.ddpm.Denoiser``), y (B, P)
model-space measurements, ``op`` an SVD operator, σ_y a float or (B,) tensor, ``config`` its own frozen
typed settings (a :class:`SamplerConfig` subclass), ``generators`` one per observation, K denoiser
steps, S samples per observation, and x (B, S, N, N) model-space samples. The same order runs through
every entry point: ``run_sampler``, ``reconstruct``, ``pipeline.simulate_and_score``,
``radio.imaging.gridded_posterior``. ``@register(ConfigClass)`` attaches the function to its config
class, so a config picks its sampler (no string prefixes), carries it wherever it is pickled (Ray
actors), and names the method in tables (``config.name``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar, Optional, Protocol, Sequence, Union

import torch

from ddrm.config import Config
from ddrm.diffusion.ddpm import Denoiser, StepCallback
from ddrm.diffusion.schedule import Schedule
from ddrm.inverse.operators.base import SVDOperator


@dataclass(frozen=True)
class SamplerConfig(Config):
    """Base of every sampler's settings. ``name`` (class level) labels its rows in tables and tags its dict
    (``ddrm.config``: {"sampler": name, **fields}; ``config_class`` finds the class of a name)."""

    name: ClassVar[str] = "sampler"
    config_tag: ClassVar[str] = "sampler"

    def nfe(self, K: int) -> int:
        """Denoiser evaluations per sample at K steps (K unless the sampler says otherwise)."""
        return K

    @classmethod
    def config_class(cls, name: str) -> type:
        if name not in _BY_NAME:
            raise ValueError(f"unknown sampler {name!r}; choose one of {sorted(_BY_NAME)}")
        return _BY_NAME[name]


class Sampler(Protocol):
    def __call__(self, prior: Denoiser, y: torch.Tensor, op: SVDOperator, sigma_y: Union[float, torch.Tensor],
                 config: SamplerConfig, generators: Sequence[torch.Generator], *, K: int, S: int,
                 callback: Optional[StepCallback] = None) -> torch.Tensor: ...


_BY_NAME: dict[str, type] = {}


def register(config_type: type) -> Callable[[Sampler], Sampler]:
    """Decorator: ``@register(MyConfig)`` makes ``run_sampler`` call the function for MyConfig."""
    if not (isinstance(config_type, type) and issubclass(config_type, SamplerConfig)):
        raise TypeError(f"{config_type!r} is not a SamplerConfig subclass")

    def wrap(fn: Sampler) -> Sampler:
        if _BY_NAME.get(config_type.name, config_type) is not config_type:
            raise ValueError(f"a sampler named {config_type.name!r} is registered already")
        config_type._sampler = staticmethod(fn)
        _BY_NAME[config_type.name] = config_type
        return fn

    return wrap


def sampler_for(config: SamplerConfig) -> Sampler:
    fn = getattr(type(config), "_sampler", None)
    if fn is None:
        raise TypeError(f"no sampler registered for {type(config).__name__}")
    return fn


def config_for(name: str, **params) -> SamplerConfig:
    """A sampler config by its registered name (the CLI's ``--sampler``), with parameters."""
    if name not in _BY_NAME:
        raise ValueError(f"unknown sampler {name!r}; choose one of {sorted(_BY_NAME)}")
    return _BY_NAME[name](**params)


def sampler_names() -> list[str]:
    return sorted(_BY_NAME)


def check_steps(K: int, S: int, schedule: Schedule) -> None:
    """K is checked where it is defined, by ``schedule.timesteps`` (1 <= K <= T); S >= 1 here."""
    schedule.timesteps(K)
    if isinstance(S, bool) or not isinstance(S, int) or S < 1:
        raise ValueError(f"S (samples per observation) must be an integer >= 1, got {S!r}")


def run_sampler(prior: Denoiser, y: torch.Tensor, op: SVDOperator, sigma_y: Union[float, torch.Tensor],
                config: SamplerConfig, generators: Sequence[torch.Generator], *, K: int, S: int,
                callback: Optional[StepCallback] = None) -> torch.Tensor:
    """Checks the common arguments once, then calls the sampler registered for ``config``."""
    if not isinstance(config, SamplerConfig):
        raise TypeError(f"config must be a SamplerConfig (e.g. DDRMConfig()), got {type(config).__name__}")
    check_steps(K, S, schedule_of(prior))
    if y.dim() != 2:
        raise ValueError(f"y must have shape (B, {op.num_outputs}), got {tuple(y.shape)}")
    op.check_measurements(y)
    if len(generators) != y.shape[0]:
        raise ValueError(f"need one generator per observation: {y.shape[0]} observations, "
                         f"{len(generators)} generators")
    return sampler_for(config)(prior, y, op, sigma_y, config, generators, K=K, S=S, callback=callback)


def schedule_of(prior: Denoiser) -> Schedule:
    """The noise schedule a prior carries; TypeError for a bare callable."""
    schedule = getattr(prior, "schedule", None)
    if not isinstance(schedule, Schedule):
        raise TypeError(f"the prior must carry its schedule (a Denoiser such as EpsDenoiser), got "
                        f"{type(prior).__name__}")
    return schedule


def make_generators(seeds: Sequence[int], device: Union[str, torch.device] = "cpu") -> list[torch.Generator]:
    """One seeded generator per observation, on ``device``."""
    return [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]


def sigma_per_observation(sigma_y: Union[float, torch.Tensor], B: int, like: torch.Tensor) -> torch.Tensor:
    """σ_y as (B, 1, 1) in like's dtype/device; ValueError unless finite, >= 0, scalar or (B,)."""
    sy = torch.as_tensor(sigma_y, dtype=like.dtype, device=like.device).reshape(-1)
    if sy.numel() not in (1, B):
        raise ValueError(f"sigma_y must be a scalar or have one value per observation ({B}), got {sy.numel()}")
    if not bool(torch.isfinite(sy).all()) or bool((sy < 0).any()):
        raise ValueError(f"sigma_y must be finite and >= 0, got {sigma_y}")
    return sy.expand(B).reshape(B, 1, 1)


def fill_normal(generators: Sequence[torch.Generator], out: torch.Tensor) -> torch.Tensor:
    """Fill out[b] from generators[b] (each observation's noise is its own)."""
    for b, g in enumerate(generators):
        out[b].normal_(generator=g)
    return out

"""Posterior samplers of y = H x + z behind one signature (diffusers' ``schedulers/`` habit: one module each).

    sampler(prior, y, op, sigma_y, config, generators, *, K, S, callback=None) -> x (B, S, N, N)

``base`` holds the protocol, the registry and ``run_sampler``; each sampler module registers its
function on its frozen config class. The modules are imported here, explicitly, so that importing
``ddrm.inverse.samplers`` registers every sampler:

    ddrm          DDRM (Kawar et al. 2022): ``DDRMConfig``
    split_gibbs   annealed split Gibbs under the diffusion prior: ``SplitGibbsConfig``
"""

from ddrm.inverse.samplers.base import (Sampler, SamplerConfig, check_steps, config_for, fill_normal, make_generators,
                                        register, run_sampler, sampler_for, sampler_names, schedule_of,
                                        sigma_per_observation)
from ddrm.inverse.samplers.ddrm import DDRMConfig, ddrm_sample
from ddrm.inverse.samplers.split_gibbs import SplitGibbsConfig, rho_timesteps

__all__ = ["Sampler", "SamplerConfig", "check_steps", "config_for", "fill_normal", "make_generators", "register",
           "run_sampler", "sampler_for", "sampler_names", "schedule_of", "sigma_per_observation", "DDRMConfig",
           "ddrm_sample", "SplitGibbsConfig", "rho_timesteps"]

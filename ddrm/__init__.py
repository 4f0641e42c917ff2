"""radio-ddrm's pure library: tensors in, tensors out (no I/O, no orchestration).

Schedules, the U-Net denoiser, the DDPM loss and samplers, linear operators with an
SVD interface, posterior samplers behind one signature (DDRM first), reconstruction from
measurements, metrics and classical baselines. The maths: docs/design.md.
"""

from .ddpm import EMA, EpsDenoiser, ddpm_loss, sample_ancestral, sample_ddim
from .operators import (DenseSVDOperator, FourierSamplingOperator, IdentityOperator, PixelMaskOperator,
                        RealFourierBasis, SVDOperator)
from .reconstruct import Posterior, reconstruct
from .samplers import DDRMConfig, SamplerConfig, SplitGibbsConfig, ddrm_sample, make_generators, register, run_sampler
from .samplers.ddrm import ddrm
from .samplers.split_gibbs import split_gibbs
from .schedule import Schedule
from .unet import UNet, UNetConfig, unet_preset

__version__ = "0.1.0"

__all__ = [
    "Schedule", "UNet", "UNetConfig", "unet_preset", "EMA", "EpsDenoiser", "ddpm_loss", "sample_ancestral",
    "sample_ddim", "SVDOperator", "IdentityOperator", "PixelMaskOperator", "DenseSVDOperator",
    "FourierSamplingOperator", "RealFourierBasis", "DDRMConfig", "ddrm", "ddrm_sample", "make_generators",
    "SamplerConfig", "register", "run_sampler", "Posterior", "reconstruct", "SplitGibbsConfig", "split_gibbs",
]

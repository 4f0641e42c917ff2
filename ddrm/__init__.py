"""radio-ddrm's pure library: tensors in, tensors out (no I/O, no orchestration).

Schedules, the U-Net denoiser, the DDPM loss and samplers, linear operators with an
SVD interface, the DDRM sampler, metrics and classical baselines. See design.md.
"""

from .ddpm import EMA, EpsDenoiser, ddpm_loss, sample_ancestral, sample_ddim
from .operators import (DenseSVDOperator, FourierSamplingOperator, IdentityOperator, PixelMaskOperator,
                        RealFourierBasis, SVDOperator)
from .sampler import DDRMConfig, ddrm_sample, make_generators
from .schedule import Schedule
from .unet import UNet, UNetConfig, unet_preset

__version__ = "0.1.0"

__all__ = [
    "Schedule", "UNet", "UNetConfig", "unet_preset", "EMA", "EpsDenoiser", "ddpm_loss", "sample_ancestral",
    "sample_ddim", "SVDOperator", "IdentityOperator", "PixelMaskOperator", "DenseSVDOperator",
    "FourierSamplingOperator", "RealFourierBasis", "DDRMConfig", "ddrm_sample", "make_generators",
]

"""radio-ddrm's pure library: tensors in, tensors out (no I/O, no orchestration).

Three subjects, one folder each (lower ones never import higher ones):

    diffusion/   the prior: schedules, the U-Net denoiser, the DDPM loss and sampling, training, training images
    inverse/     y = H x + z under that prior: operators with an SVD, the samplers behind one signature (DDRM
                 first), reconstruction, analytic priors, metrics, the calibration of intervals
    radio/       interferometry: layouts, uv-coverage, gridding, the NUFFT, simulated observations, closures,
                 gains, the visibility and closure likelihoods, self-calibration and the imaging recipe

The maths: docs/design.md.
"""

from ddrm.diffusion.ddpm import EMA, EpsDenoiser, ddpm_loss, sample_ancestral, sample_ddim
from ddrm.diffusion.schedule import Schedule
from ddrm.diffusion.unet import UNet, UNetConfig, unet_preset
from ddrm.inverse.operators import (DenseSVDOperator, FourierSamplingOperator, IdentityOperator, PixelMaskOperator,
                                    RealFourierBasis, SVDOperator)
from ddrm.inverse.reconstruct import Posterior, reconstruct
from ddrm.inverse.samplers import (DDRMConfig, SamplerConfig, SplitGibbsConfig, ddrm_sample, make_generators, register,
                                   run_sampler)
from ddrm.inverse.samplers.ddrm import ddrm
from ddrm.inverse.samplers.split_gibbs import split_gibbs

__version__ = "0.1.0"

__all__ = [
    "Schedule", "UNet", "UNetConfig", "unet_preset", "EMA", "EpsDenoiser", "ddpm_loss", "sample_ancestral",
    "sample_ddim", "SVDOperator", "IdentityOperator", "PixelMaskOperator", "DenseSVDOperator",
    "FourierSamplingOperator", "RealFourierBasis", "DDRMConfig", "ddrm", "ddrm_sample", "make_generators",
    "SamplerConfig", "register", "run_sampler", "Posterior", "reconstruct", "SplitGibbsConfig", "split_gibbs",
]

"""Linear operators with an SVD interface (see :mod:`ddrm.inverse.operators.base`)."""

from ddrm.inverse.operators.base import SVDOperator
from ddrm.inverse.operators.fourier import FourierSamplingOperator, RealFourierBasis, close_counts, conjugate_flip
from ddrm.inverse.operators.simple import DenseSVDOperator, IdentityOperator, PixelMaskOperator

__all__ = [
    "SVDOperator",
    "IdentityOperator",
    "PixelMaskOperator",
    "DenseSVDOperator",
    "FourierSamplingOperator",
    "RealFourierBasis",
    "close_counts",
    "conjugate_flip",
]

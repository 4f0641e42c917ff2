"""Linear operators with an SVD interface (see :mod:`ddrm.operators.base`)."""

from .base import SVDOperator
from .fourier import FourierSamplingOperator, RealFourierBasis, close_counts, conjugate_flip
from .simple import DenseSVDOperator, IdentityOperator, PixelMaskOperator

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

import warnings

import pytest
import torch

from ddrm.operators import FourierSamplingOperator


def random_counts(N: int, fraction: float, seed: int, with_dc: bool = True) -> torch.Tensor:
    """Hermitian-symmetric integer counts on the FFT grid, about ``fraction`` of cells measured."""
    g = torch.Generator().manual_seed(seed)
    half = (torch.rand(N, N, generator=g) < fraction / 2) * torch.randint(1, 6, (N, N), generator=g)
    counts = half + torch.roll(torch.flip(half, (0, 1)), (1, 1), (0, 1))
    if with_dc:
        counts[0, 0] = max(int(counts[0, 0]), 2)
    return counts


@pytest.fixture
def fourier_op():
    def make(N: int, fraction: float = 0.3, seed: int = 0, weighting: str = "natural") -> FourierSamplingOperator:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # symmetric counts must not warn
            return FourierSamplingOperator(random_counts(N, fraction, seed), weighting=weighting)
    return make

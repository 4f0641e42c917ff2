"""Dirty images and PSFs straight from the visibilities, by the one NUFFT of the package (``nufft``:
ducc0's wgridder), not the nearest-cell grid of the operator. Tensors out.

The dirty image at pixel offset (r, c) from the phase centre (row r to the North, column c to the West; the
conventions of ``gridding``: V(u, v) = Σ I exp(+2πi(u l + v m)), l = -c Δθ, m = r Δθ) is

    I_D(r, c) = Σ_j w_j Re[V_j exp(2πi(κ_r,j r + κ_c,j c)/N)] / Σ_j w_j,    κ_j = ``cell_coordinates``,

in Jy/beam (a point source of S Jy at the centre peaks at S), to the wgridder's ε. The nearest-cell grid
moves each sample by up to half a cell, a phase error of up to π/2 at the field's edge; this image has none.
"""

from __future__ import annotations

import numpy as np
import torch

from ddrm.radio.gridding import ARCSEC
from ddrm.radio.nufft import EPSILON, adjoint


def nufft_dirty(uv: np.ndarray, vis: np.ndarray, weight: np.ndarray, N: int, pixel_scale_arcsec: float,
                epsilon: float = EPSILON) -> torch.Tensor:
    """Dirty image (N, N) float64, phase centre at pixel (N//2, N//2), of visibilities vis (n,) at uv (n, 2)
    wavelengths with imaging weights (n,) (natural: the data weights); Jy/beam."""
    if N < 2 or not pixel_scale_arcsec > 0:
        raise ValueError("need N >= 2 and a positive pixel scale")
    keep = np.asarray(weight) > 0
    if not keep.any():
        raise ValueError("no visibility with a positive weight")
    uv, vis, weight = np.asarray(uv)[keep], np.asarray(vis)[keep], np.asarray(weight, dtype=np.float64)[keep]
    return adjoint(uv=uv, vis=weight * vis, npix=N, pixel_size=pixel_scale_arcsec * ARCSEC, epsilon=epsilon) / weight.sum()


def nufft_psf(uv: np.ndarray, weight: np.ndarray, N: int, pixel_scale_arcsec: float) -> torch.Tensor:
    """The point-spread function at every offset in [-N, N): (2N, 2N), peak 1 at pixel (0, 0), so that CLEAN
    can shift it to any pixel of an N×N image exactly (``baselines.hogbom_clean``)."""
    psf = nufft_dirty(uv, np.ones(len(uv)), weight, 2 * N, pixel_scale_arcsec)
    return torch.roll(psf, (-N, -N), dims=(0, 1))

"""How well images fit visibilities at their own (u, v): the χ² per real coordinate with the data weights,

    χ²(I) = Σ_j w_j |V_j - (A I)_j|² / (2 n)      over the n samples an N×N image can model (|κ| < N/2),

A the degridder (``nufft.degrid``), I in Jy/pixel, w_j = 1/σ_j² per real coordinate. Tensors and arrays in.
"""

from __future__ import annotations

import numpy as np
import torch

from ddrm.radio.gridding import ARCSEC, cell_coordinates
from ddrm.radio.nufft import chi2_per_coordinate, degrid


def on_field(uv: np.ndarray, N: int, pixel_scale_arcsec: float) -> np.ndarray:
    """(n,) bool: samples an N×N image of this pixel scale can model, |κ| < N/2 on both axes."""
    return (np.abs(cell_coordinates(uv, N, pixel_scale_arcsec)) < N / 2).all(axis=1)


def fit_chi2(images: dict[str, torch.Tensor], uv: np.ndarray, vis: np.ndarray, weight: np.ndarray,
             pixel_scale_arcsec: float) -> tuple[dict[str, float], dict[str, np.ndarray], np.ndarray]:
    """(χ² per image, its model visibilities at the on-field samples, the on-field mask (n,)) of images
    (name -> (N, N)), all degridded in one call."""
    N = next(iter(images.values())).shape[-1]
    on = on_field(uv, N, pixel_scale_arcsec)
    models = degrid(uv=uv[on], image=torch.stack([img.double() for img in images.values()]), pixel_size=pixel_scale_arcsec * ARCSEC)
    by_name = dict(zip(images, models))
    return ({name: chi2_per_coordinate(m, vis[on], weight[on]) for name, m in by_name.items()}, by_name, on)

"""Multiscale CLEAN by radler (WSClean's deconvolver), with major cycles against the visibilities.

Each major cycle: the residual dirty image of the data minus the model's visibilities (``nufft``), then
radler's multiscale minor loop on it (components at several scales, down to ``threshold`` or until the
peak fell by ``major_loop_gain``); stops when radler reports the threshold reached or after ``cycles``.

    residual_k = D(V - A M_k),     M_{k+1} = M_k + radler(residual_k, PSF)

D is the dirty image (Jy/beam) with the given imaging weights, A the degridder, M the model in Jy/pixel.
radler is optional (``pip install radler``); ``available()`` says whether it imports. radler logs to file
descriptor 1; callers that keep stdout for data silence it (``tasks.image``).
"""

from __future__ import annotations

import numpy as np
import torch

from .dirty import nufft_dirty, nufft_psf
from .gridding import ARCSEC
from .nufft import degrid


def available() -> bool:
    try:
        import radler  # noqa: F401
    except ImportError:
        return False
    return True


def multiscale_clean(uv: np.ndarray, vis: np.ndarray, weights: np.ndarray, N: int, pixel_scale_arcsec: float,
                     beam_fwhm_pixels: float, threshold_jy: float, max_iter: int = 5000, gain: float = 0.1,
                     cycles: int = 5) -> torch.Tensor:
    """CLEAN components (N, N) float64, Jy/pixel, of visibilities vis (n,) at uv (n, 2) with imaging weights (n,)."""
    import radler

    psf = np.ascontiguousarray(np.roll(nufft_psf(uv, weights, N, pixel_scale_arcsec).numpy(), (N // 2, N // 2),
                                       axis=(0, 1))[:N, :N], dtype=np.float32)  # peak at (N//2, N//2)
    settings = radler.Settings()
    settings.trimmed_image_width = settings.trimmed_image_height = N
    settings.pixel_scale.x = settings.pixel_scale.y = pixel_scale_arcsec * ARCSEC
    settings.algorithm_type = radler.AlgorithmType.multiscale
    settings.minor_iteration_count = max_iter
    settings.minor_loop_gain = gain
    settings.major_loop_gain = 0.8
    settings.absolute_threshold = threshold_jy
    settings.thread_count = 1
    model = np.zeros((N, N), dtype=np.float32)
    for cycle in range(cycles):
        residual = np.ascontiguousarray(
            nufft_dirty(uv, vis - degrid(torch.from_numpy(model.astype(np.float64)), uv, pixel_scale_arcsec), weights,
                        N, pixel_scale_arcsec).numpy(), dtype=np.float32)
        deconvolver = radler.Radler(settings, psf, residual, model, beam_fwhm_pixels * pixel_scale_arcsec * ARCSEC,
                                    radler.Polarization.stokes_i)
        more = deconvolver.perform(cycle + 1)
        del deconvolver  # it prints its summary (to file descriptor 1) when it goes
        if not more:  # the threshold (or the iteration limit) was reached
            break
    return torch.from_numpy(model.astype(np.float64))

"""Multiscale CLEAN by radler (WSClean's deconvolver), with major cycles against the visibilities.

Each major cycle: the residual dirty image of the data minus the model's visibilities (``nufft``), then
radler's multiscale minor loop on it (components at several scales, down to ``threshold`` or until the
peak fell by ``major_loop_gain``); stops when radler reports the threshold reached or after ``cycles``.
A cycle that raises the residual's rms (radler's minor loop can diverge under a noise-like PSF, e.g. a
random cell mask) is undone, and the deconvolution stops there.

    residual_k = D(V - A M_k),     M_{k+1} = M_k + radler(residual_k, PSF)

D is the dirty image (Jy/beam) with the given imaging weights, A the degridder, M the model in Jy/pixel.
radler is optional (``pip install radler``); ``available()`` says whether it imports. radler logs to file
descriptor 1; callers that keep stdout for data silence it (``imager.file``).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ddrm.radio.dirty import nufft_dirty, nufft_psf
from ddrm.radio.gridding import ARCSEC
from ddrm.radio.nufft import degrid


def available() -> bool:
    try:
        import radler  # noqa: F401
    except ImportError:
        return False
    return True


def deconvolve(residual_of: Callable[[np.ndarray], np.ndarray], psf: np.ndarray, pixel_scale_rad: float,
               beam_fwhm_pixels: float, threshold: float, max_iter: int = 5000, gain: float = 0.1,
               cycles: int = 5) -> np.ndarray:
    """Multiscale CLEAN components M (N, N) float64 with major cycles: ``residual_of(M)`` is the residual
    dirty image D(y - A M) (N, N), ``psf`` (N, N) the peak-1 dirty beam centred at (N//2, N//2)."""
    import radler

    N = psf.shape[0]
    settings = radler.Settings()
    settings.trimmed_image_width = settings.trimmed_image_height = N
    settings.pixel_scale.x = settings.pixel_scale.y = pixel_scale_rad
    settings.algorithm_type = radler.AlgorithmType.multiscale
    settings.minor_iteration_count = max_iter
    settings.minor_loop_gain = gain
    settings.major_loop_gain = 0.8
    settings.absolute_threshold = threshold
    settings.thread_count = 1
    psf = np.ascontiguousarray(psf, dtype=np.float32)
    model = np.zeros((N, N), dtype=np.float32)
    kept, kept_rms = model.copy(), np.inf
    for cycle in range(cycles):
        residual = np.ascontiguousarray(residual_of(model.astype(np.float64)), dtype=np.float32)
        rms = float(np.sqrt(np.mean(residual.astype(np.float64) ** 2)))
        if rms >= kept_rms:  # the minor loop diverged (a noise-like PSF): keep the last model that helped
            return kept.astype(np.float64)
        kept, kept_rms = model.copy(), rms
        deconvolver = radler.Radler(settings, psf, residual, model, beam_fwhm_pixels * pixel_scale_rad,
                                    radler.Polarization.stokes_i)
        more = deconvolver.perform(cycle + 1)
        del deconvolver  # it prints its summary (to file descriptor 1) when it goes
        if not more:  # the threshold (or the iteration limit) was reached
            break
    if float(np.sqrt(np.mean(residual_of(model.astype(np.float64)) ** 2))) >= kept_rms:
        return kept.astype(np.float64)
    return model.astype(np.float64)


def multiscale_clean(uv: np.ndarray, vis: np.ndarray, weights: np.ndarray, N: int, pixel_scale_arcsec: float,
                     beam_fwhm_pixels: float, threshold_jy: float, max_iter: int = 5000, gain: float = 0.1,
                     cycles: int = 5) -> torch.Tensor:
    """CLEAN components (N, N) float64, Jy/pixel, of visibilities vis (n,) at uv (n, 2) with imaging weights (n,);
    the residual of each major cycle from the exact degridder (``nufft``)."""
    psf = np.roll(nufft_psf(uv, weights, N, pixel_scale_arcsec).numpy(), (N // 2, N // 2), axis=(0, 1))[:N, :N]

    def residual_of(model: np.ndarray) -> np.ndarray:
        return nufft_dirty(uv, vis - degrid(uv=uv, image=torch.from_numpy(model), pixel_size=pixel_scale_arcsec * ARCSEC), weights, N,
                           pixel_scale_arcsec).numpy()

    return torch.from_numpy(deconvolve(residual_of, psf, pixel_scale_arcsec * ARCSEC, beam_fwhm_pixels, threshold_jy,
                                       max_iter, gain, cycles))


def multiscale_gridded(dirty: torch.Tensor, psf: torch.Tensor, beam_fwhm_pixels: float, threshold: float,
                       max_iter: int = 5000, gain: float = 0.1, cycles: int = 5) -> torch.Tensor:
    """CLEAN components (B, N, N) of dirty images (B, N, N) under a shift-invariant, circular PSF (N, N), peak 1
    at (0, 0), as gridded Fourier sampling has: residual = dirty - psf ⊛ M, exact by FFT. The pixel scale
    is immaterial here (scales are in beam widths); 1 arcsec is passed."""
    N = dirty.shape[-1]
    kernel = torch.fft.rfft2(psf.double())
    centred = torch.fft.fftshift(psf.double()).numpy()
    out = []
    for d in dirty.double().cpu():
        def residual_of(model: np.ndarray, d=d) -> np.ndarray:
            return (d - torch.fft.irfft2(torch.fft.rfft2(torch.from_numpy(model)) * kernel, s=(N, N))).numpy()
        out.append(torch.from_numpy(deconvolve(residual_of, centred, ARCSEC, beam_fwhm_pixels, threshold, max_iter,
                                               gain, cycles)))
    return torch.stack(out).to(dirty)

"""The measurement equation at each visibility's own (u, v): ducc0's wgridder (``dirty2vis``/``vis2dirty``,
an exponential-of-semicircle non-uniform FFT to an explicit accuracy ε), the field's standard imager.

For an N×N image I (Jy/pixel, row r to the North, column c to the West, phase centre at (N//2, N//2)) and
continuous cell coordinates κ_j = ``gridding.cell_coordinates`` of sample j (the conventions of
``gridding``: V(u, v) = Σ I exp(+2πi(u l + v m)), l = -c Δθ, m = r Δθ):

    model visibilities   V_j = Σ_{r,c} I[r, c] exp(-2πi (κ_r,j (r - N//2) + κ_c,j (c - N//2)) / N)   (Jy)
    dirty image          I_D[r, c] = Σ_j w_j Re[V_j exp(+2πi (κ_r,j (r - N//2) + κ_c,j (c - N//2)) / N)] / Σ_j w_j

so the dirty image is Re[Aᴴ W V] / Σ w for the degridder A, its exact adjoint. A point source of S Jy at
the centre peaks at S Jy/beam. The wgridder works on even grids: an odd N is embedded in N + 1 with the
same centre, an even N in N + 2 (ducc0's rows run the other way, and row offset -N/2 mirrored is +N/2).
Keyword-only arguments in SI units (pixel sizes in radians; ``gridding.ARCSEC`` converts), in ducc0's
habit, one order for the operator and its adjoint (uv, the data, the geometry). Tensors in and out; numpy for
ducc0 only.
"""

from __future__ import annotations

import os

import numpy as np
import torch

EPSILON = 1e-7  # the wgridder's relative accuracy
SPEED_OF_LIGHT = 299792458.0  # (u, v) are in wavelengths: one "frequency" at which a wavelength is 1 m


def threads() -> int:
    """ducc0's threads: the CPUs this process may use."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def _uvw(uv: np.ndarray) -> np.ndarray:
    uv = np.asarray(uv, dtype=np.float64)
    return np.ascontiguousarray(np.concatenate([uv, np.zeros((len(uv), 1))], axis=1))


def _grid_size(N: int) -> tuple[int, int]:
    """(M, shift): the even grid that holds an N×N image with its centre N//2 at M//2 and room for the
    mirrored rows (offsets r and -r both representable: M >= 2 (N//2) + 1)."""
    M = N + 2 if N % 2 == 0 else N + 1
    return M, M // 2 - N // 2


def _to_ducc(image: np.ndarray, N: int) -> np.ndarray:
    """Our (r, c) image -> ducc0's (x, y) layout on the even grid: D[x, y] = I[(-y) mod M, x]."""
    M, s = _grid_size(N)
    big = np.zeros((M, M), dtype=np.float64)
    big[s:s + N, s:s + N] = image
    return np.ascontiguousarray(big[(-np.arange(M)) % M, :].T)


def _from_ducc(D: np.ndarray, N: int) -> np.ndarray:
    """ducc0's (x, y) image -> ours (r, c): I[r, c] = D[c, (-r) mod M], cropped to N×N."""
    M, s = _grid_size(N)
    return D.T[(-np.arange(M)) % M, :][s:s + N, s:s + N]


def _check(npix: int, pixel_size: float) -> None:
    if npix < 2 or not pixel_size > 0:
        raise ValueError(f"need npix >= 2 and a positive pixel size (radians), got npix={npix}, {pixel_size}")


def degrid(*, uv: np.ndarray, image: torch.Tensor, pixel_size: float, epsilon: float = EPSILON) -> np.ndarray:
    """V = A I: model visibilities (n,) complex128 (Jy) at uv (n, 2) wavelengths of an image (N, N) in
    Jy/pixel with square pixels of ``pixel_size`` radians; for a stack (B, N, N), (B, n).

        V_j = Σ_{r,c} I[r, c] exp(-2πi (κ_r,j (r - N//2) + κ_c,j (c - N//2)) / N)"""
    img = image.detach().double().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image, float)
    if img.ndim == 3:
        return np.stack([degrid(uv=uv, image=one, pixel_size=pixel_size, epsilon=epsilon) for one in img])
    N = img.shape[-1]
    _check(N, pixel_size)
    if len(uv) == 0:
        return np.zeros(0, dtype=np.complex128)
    import ducc0

    return ducc0.wgridder.experimental.dirty2vis(
        uvw=_uvw(uv), freq=np.array([SPEED_OF_LIGHT]), dirty=_to_ducc(img, N), pixsize_x=pixel_size,
        pixsize_y=pixel_size, epsilon=epsilon, do_wgridding=False, nthreads=threads())[:, 0]


def adjoint(*, uv: np.ndarray, vis: np.ndarray, npix: int, pixel_size: float,
            epsilon: float = EPSILON) -> torch.Tensor:
    """Re[Aᴴ V] (npix, npix) float64 for values V (n,) at uv (n, 2) wavelengths, pixels of ``pixel_size``
    radians: the adjoint of ``degrid``, on one thread (bit-reproducible; as fast as two up to 60 000 samples),

        (Aᴴ V)[r, c] = Σ_j Re[V_j exp(+2πi (κ_r,j (r - N//2) + κ_c,j (c - N//2)) / N)]"""
    _check(npix, pixel_size)
    import ducc0

    M, _ = _grid_size(npix)
    D = ducc0.wgridder.experimental.vis2dirty(
        uvw=_uvw(uv), freq=np.array([SPEED_OF_LIGHT]), vis=np.ascontiguousarray(np.asarray(vis, np.complex128)[:, None]),
        npix_x=M, npix_y=M, pixsize_x=pixel_size, pixsize_y=pixel_size, epsilon=epsilon, do_wgridding=False,
        nthreads=1)  # gridding on threads sums in the order they finish: the same call differed (~1e-13) under load
    return torch.from_numpy(np.ascontiguousarray(_from_ducc(D, npix)))


def chi2_per_coordinate(model_vis: np.ndarray, vis: np.ndarray, weight: np.ndarray) -> float:
    """Σ_j w_j |V_j - M_j|² / (2 n): the χ² per real coordinate, w = 1/σ² per real coordinate."""
    r = np.asarray(vis) - np.asarray(model_vis)
    return float((np.asarray(weight) * (r.real ** 2 + r.imag ** 2)).sum() / (2 * len(r))) if len(r) else float("nan")

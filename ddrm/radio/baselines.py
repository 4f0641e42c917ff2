"""Classical baselines on the same operator (docs/design.md §7): dirty image and Hogbom CLEAN.

For Fourier sampling HᵀH = F^H diag(s²) F is a circular convolution, so the dirty
beam (PSF) is exact and shift-invariant: psf = HᵀH δ_0 / (HᵀH δ_0)_0, peak 1 at pixel (0, 0).
The dirty image is Hᵀ y / (HᵀH δ_0)_0, so a point source of flux A has dirty peak A.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ddrm.config import Config
from ddrm.inverse.operators.fourier import FourierSamplingOperator
from ddrm.inverse.units import image_space_measurements


def _require_fourier(op: object) -> None:
    if not isinstance(op, FourierSamplingOperator):
        raise TypeError("dirty beam and CLEAN need a shift-invariant FourierSamplingOperator")


def _psf(op: FourierSamplingOperator, dtype: torch.dtype) -> torch.Tensor:
    """HᵀH δ_0 (N, N), un-normalised."""
    _require_fourier(op)
    delta = torch.zeros(op.N, op.N, dtype=dtype)
    delta[0, 0] = 1
    return op.Ht(op.H(delta))


def psf_peak(op: FourierSamplingOperator, dtype: torch.dtype = torch.float64) -> float:
    """(HᵀH δ_0)_0 = Σ_i s_i² V_{0,i}²: the un-normalised dirty-beam peak."""
    return float(_psf(op, dtype)[0, 0])


def dirty_beam(op: FourierSamplingOperator, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """PSF (N, N), peak 1 at pixel (0, 0) (``torch.fft.fftshift`` centres it)."""
    psf = _psf(op, dtype)
    return psf / psf[0, 0]


def dirty_image(y: torch.Tensor, op: FourierSamplingOperator) -> torch.Tensor:
    """Hᵀ y / psf_peak: (..., M) -> (..., N, N)."""
    return op.Ht(y) / psf_peak(op, y.dtype)


def dirty_noise_std(op: FourierSamplingOperator, sigma_y: float) -> float:
    """Per-pixel noise std of the dirty image for white noise σ_y on y: σ_y / √psf_peak."""
    return sigma_y / math.sqrt(psf_peak(op))


@dataclass(frozen=True)
class CleanBeam:
    """Elliptical Gaussian exp(-½ [x y] Q [x y]ᵀ), Q = [[a, b], [b, c]], pixels; peak 1."""

    a: float
    b: float
    c: float

    @property
    def fwhm_pixels(self) -> tuple[float, float]:
        """Major and minor FWHM in pixels."""
        ev = torch.linalg.eigvalsh(torch.tensor([[self.a, self.b], [self.b, self.c]], dtype=torch.float64))
        major, minor = (2 * math.sqrt(2 * math.log(2) / float(e)) for e in ev)
        return major, minor

    @property
    def position_angle_deg(self) -> float:
        """The major axis' angle from North (+row) through East (-column), in [0, 180) degrees."""
        ev, vec = torch.linalg.eigh(torch.tensor([[self.a, self.b], [self.b, self.c]], dtype=torch.float64))
        ex, ey = (float(v) for v in vec[:, 0])  # smallest eigenvalue: the major axis, (column, row)
        return math.degrees(math.atan2(-ex, ey)) % 180.0

    @property
    def area_pixels(self) -> float:
        """Beam solid angle in pixels, 2π / √det Q (Jy/beam -> Jy/pixel divides by it)."""
        return 2 * math.pi / math.sqrt(self.a * self.c - self.b * self.b)

    def image(self, N: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """The beam on the N×N grid, centred at pixel (0, 0) with wrap-around."""
        d = torch.fft.fftfreq(N, d=1.0 / N, dtype=dtype)
        yy, xx = d[:, None], d[None, :]
        return torch.exp(-0.5 * (self.a * xx**2 + 2 * self.b * xx * yy + self.c * yy**2))


def fit_clean_beam(psf: torch.Tensor) -> CleanBeam:
    """Least-squares Gaussian fit to the PSF main lobe (the connected region above half peak).

    Fits -2 ln psf = a x² + 2 b x y + c y² on the main-lobe pixels around (0, 0).
    """
    N = psf.shape[-1]
    centred = torch.fft.fftshift(psf.double())
    c0 = N // 2
    lobe = torch.zeros_like(centred, dtype=torch.bool)
    lobe[c0, c0] = True
    above = centred > 0.5
    for _ in range(N):  # flood fill of the half-power region from the centre
        grown = F.max_pool2d(lobe[None, None].double(), 3, 1, 1)[0, 0].bool() & above
        if torch.equal(grown, lobe):
            break
        lobe = grown
    near = torch.zeros_like(lobe)
    near[max(c0 - 1, 0): c0 + 2, max(c0 - 1, 0): c0 + 2] = True
    use = (lobe | (near & (centred > 0.05))) & (centred < 1.0 - 1e-12)
    yy, xx = torch.nonzero(use, as_tuple=True)
    dy, dx = (yy - c0).double(), (xx - c0).double()
    A = torch.stack([dx**2, 2 * dx * dy, dy**2], dim=1)
    rhs = -2 * torch.log(centred[yy, xx])
    if A.shape[0] >= 3:
        a, b, c = torch.linalg.lstsq(A, rhs[:, None]).solution.flatten().tolist()
        if a > 0 and c > 0 and a * c - b * b > 0:
            return CleanBeam(a, b, c)
    area = max(float(lobe.sum()), 1.0)  # fallback: round beam with the lobe's area
    q = 4 * math.log(2) / (4 * area / math.pi)
    return CleanBeam(q, 0.0, q)


@dataclass(frozen=True)
class CleanResult:
    model: torch.Tensor  # (B, N, N) clean components
    residual: torch.Tensor  # (B, N, N)
    restored: torch.Tensor  # (B, N, N) model ⊛ clean beam + residual, Jy/beam
    beam: CleanBeam
    iterations: int

    @property
    def restored_per_pixel(self) -> torch.Tensor:
        """The restored image in flux per pixel (Jy/beam / beam area), comparable to a sky model."""
        return self.restored / self.beam.area_pixels


@torch.no_grad()
def hogbom_clean(
    dirty: torch.Tensor,
    psf: torch.Tensor,
    *,
    gain: float = 0.1,
    threshold: float = 0.0,
    max_iter: int = 1000,
    positive: bool = False,
) -> CleanResult:
    """Hogbom CLEAN of dirty images (B, N, N) with a peak-1 PSF (P, P) centred at (0, 0).

    Each iteration subtracts gain · peak · psf shifted to the peak until |peak| < threshold or
    max_iter. P = N: shifted circularly, exact for gridded Fourier sampling. P = 2N: the PSF at
    every offset in [-N, N), so the shift is exact for visibilities off the grid (``dirty.nufft_psf``).
    ``positive`` only takes positive peaks (a non-negative sky). The loop runs in float64 numpy on the CPU
    (a Python loop of small steps: ~10x faster than torch's per-operation dispatch); the result comes back
    on ``dirty``'s device and dtype.
    """
    if dirty.dim() != 3 or psf.dim() != 2 or psf.shape[0] != psf.shape[1] or \
            psf.shape[-1] not in (dirty.shape[-1], 2 * dirty.shape[-1]):
        raise ValueError(f"need dirty (B, N, N) and psf (N, N) or (2N, 2N), got {tuple(dirty.shape)}, "
                         f"{tuple(psf.shape)}")
    if not 0 < gain <= 1:
        raise ValueError(f"gain must be in (0, 1], got {gain}")
    B, N, _ = dirty.shape
    # centred[N + d] = psf[d] for every offset d in (-N, N): psf[r - i, c - j] over the image is then the
    # window centred[N - i : 2N - i, N - j : 2N - j] (P = N tiles the circular PSF, P = 2N rolls it)
    psf64 = psf.detach().to("cpu", torch.float64).numpy()
    centred = np.tile(psf64, (2, 2)) if psf.shape[-1] == N else np.roll(psf64, (N, N), (0, 1))
    res = dirty.detach().to("cpu", torch.float64).numpy().copy()
    model = np.zeros_like(res)
    done = [_hogbom_one(res[k], model[k], centred, gain, threshold, max_iter, positive) for k in range(B)]
    it = max(done, default=0)
    res, model = (torch.from_numpy(a).to(dirty) for a in (res, model))
    return restore(model, res, fit_clean_beam(psf), it)


def _hogbom_one(res: np.ndarray, model: np.ndarray, centred: np.ndarray, gain: float, threshold: float,
                max_iter: int, positive: bool) -> int:
    """Hogbom iterations on one residual (N, N) in place, adding to ``model``; the iterations run."""
    N = res.shape[-1]
    score = np.empty_like(res)
    for it in range(max_iter):
        if positive:
            np.copyto(score, res)
        else:
            np.abs(res, out=score)
        i, j = divmod(int(score.argmax()), N)
        peak = float(res[i, j])
        if not score[i, j] > threshold or (positive and not peak > 0):
            return it
        res -= (gain * peak) * centred[N - i: 2 * N - i, N - j: 2 * N - j]
        model[i, j] += gain * peak
    return max_iter


def restore(model: torch.Tensor, residual: torch.Tensor, beam: CleanBeam, iterations: int) -> CleanResult:
    """restored = model ⊛ clean beam + residual (B, N, N), Jy/beam, the convolution circular by FFT."""
    N = model.shape[-1]
    kernel = torch.fft.rfft2(beam.image(N, model.dtype).to(model.device))
    restored = torch.fft.irfft2(torch.fft.rfft2(model) * kernel, s=(N, N)) + residual
    return CleanResult(model=model, residual=residual, restored=restored, beam=beam, iterations=iterations)


BASELINES = ("dirty", "clean")
MULTISCALE = "multiscale"  # radler's multiscale CLEAN, with ``CleanConfig(multiscale=True)``


@dataclass(frozen=True)
class CleanConfig(Config):
    """Hogbom CLEAN: loop gain, stop at ``threshold_sigmas`` × the dirty image's noise std, or ``max_iter``."""

    gain: float = 0.1
    threshold_sigmas: float = 3.0
    max_iter: int = 2000
    multiscale: bool = False  # also radler's multiscale CLEAN (the ``classical`` extra), same gain and threshold

    def __post_init__(self) -> None:
        if not 0 < self.gain <= 1 or not self.threshold_sigmas >= 0 or self.max_iter < 1:
            raise ValueError(f"need 0 < gain <= 1, threshold_sigmas >= 0 and max_iter >= 1, got {self}")
        if self.multiscale:
            from ddrm.radio.multiscale import available
            if not available():
                raise ValueError("multiscale CLEAN needs radler: pip install 'radio-ddrm[classical]'")


def baseline_names(clean: CleanConfig = CleanConfig()) -> tuple[str, ...]:
    """The baseline images a survey with this CLEAN configuration stores: dirty, clean[, multiscale]."""
    return BASELINES + ((MULTISCALE,) if clean.multiscale else ())


def baselines(y: torch.Tensor, op: FourierSamplingOperator, sigma_y: float,
              clean: CleanConfig = CleanConfig()) -> dict[str, torch.Tensor]:
    """{"dirty", "clean"[, "multiscale"]}: images (B, N, N) in flux per pixel (image space) from model-space y (B, M).

    y_img = (y + H 1)/2 (image-space noise σ_y/2); dirty = Hᵀ y_img / psf_peak in Jy/beam, divided by
    the clean beam's area; CLEAN restored per pixel, stopping at ``threshold_sigmas`` × the dirty noise.
    Multiscale CLEAN (radler) runs on the same dirty image, PSF, threshold and beam, its residual exact
    (psf ⊛ M by FFT) at each major cycle.
    """
    dirty, psf = dirty_image(image_space_measurements(y, op), op), dirty_beam(op)
    threshold = clean.threshold_sigmas * dirty_noise_std(op, sigma_y / 2)
    result = hogbom_clean(dirty, psf, gain=clean.gain, threshold=threshold, max_iter=clean.max_iter)
    out = {"dirty": dirty / result.beam.area_pixels, "clean": result.restored_per_pixel}
    if clean.multiscale:
        from ddrm.radio.multiscale import multiscale_gridded
        model = multiscale_gridded(dirty, psf, max(result.beam.fwhm_pixels), threshold, gain=clean.gain,
                                   max_iter=clean.max_iter)
        residual = dirty - torch.fft.irfft2(torch.fft.rfft2(model) * torch.fft.rfft2(psf.to(model)), s=dirty.shape[-2:])
        out[MULTISCALE] = restore(model, residual, result.beam, 0).restored_per_pixel
    return out

"""FITS images with a proper celestial WCS (docs/design.md §1), via astropy.

Pixel (row, col) = FITS (y, x); row 0 is South (CDELT2 > 0) and col 0 East (CDELT1 < 0);
the reference pixel is the phase centre (N//2, N//2), i.e. FITS CRPIX = N//2 + 1.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Optional, Union

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning
from astropy.wcs import WCS

import ddrm

PathLike = Union[str, Path]


def image_wcs(N: int, ra_deg: float, dec_deg: float, pixel_scale_arcsec: float) -> WCS:
    """RA---SIN / DEC--SIN WCS for an N×N image centred on (ra, dec)."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---SIN", "DEC--SIN"]
    w.wcs.crpix = [N // 2 + 1, N // 2 + 1]
    w.wcs.crval = [ra_deg, dec_deg]
    w.wcs.cdelt = [-pixel_scale_arcsec / 3600.0, pixel_scale_arcsec / 3600.0]
    w.wcs.cunit = ["deg", "deg"]
    w.wcs.radesys = "ICRS"
    w.wcs.equinox = 2000.0
    return w


def image_hdu(image, *, ra_deg: Optional[float], dec_deg: Optional[float], pixel_scale_arcsec: Optional[float],
              bunit: str, freq_hz: Optional[float] = None, extra: Optional[dict] = None,
              bunit_comment: str = "brightness unit") -> fits.PrimaryHDU:
    """A square 2-D image (N, N) (numpy or torch) with WCS, BUNIT and provenance cards.

    ``pixel_scale_arcsec`` None (a mask-only array, which has no physical pixel scale): no celestial
    WCS; the header says so (``WCSNONE = T`` and a comment) instead of inventing one."""
    data = np.asarray(image.detach().cpu() if hasattr(image, "detach") else image, dtype=np.float32)
    if data.ndim != 2 or data.shape[0] != data.shape[1]:
        raise ValueError(f"need a square 2-D image, got shape {data.shape}")
    if pixel_scale_arcsec is None:
        header = fits.Header()
        header["WCSNONE"] = (True, "no celestial WCS: a uv mask with no pixel scale")
        header["COMMENT"] = "Observed with a mask-only array (a uv mask on the grid): pixels have no sky scale."
    else:
        header = image_wcs(data.shape[0], ra_deg, dec_deg, pixel_scale_arcsec).to_header()
    header["BUNIT"] = (bunit, bunit_comment)  # a unit astropy parses ("" for a dimensionless image)
    header["ORIGIN"] = f"radio-ddrm {ddrm.__version__}"
    if freq_hz is not None:
        header["RESTFRQ"] = freq_hz
    for key, value in (extra or {}).items():
        header[key[:8].upper()] = value
    return fits.PrimaryHDU(data=data, header=header)


def write_fits(path: PathLike, image, *, overwrite: bool = True, **cards) -> Path:
    """Write ``image_hdu(image, **cards)`` to a local path."""
    try:
        hdu = image_hdu(image, **cards)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    hdu.writeto(path, overwrite=overwrite)
    return path


def fits_bytes(image, **cards) -> bytes:
    """``image_hdu(image, **cards)`` as FITS file bytes (for object stores)."""
    buffer = io.BytesIO()
    image_hdu(image, **cards).writeto(buffer)
    return buffer.getvalue()


def read_fits(path: PathLike) -> tuple[np.ndarray, fits.Header]:
    """Read a 2-D image (degenerate axes squeezed) and its header; bad files raise ValueError naming them."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)  # a corrupt header's warnings; the error says it
            with fits.open(path, memmap=False) as hdul:
                hdu = next((h for h in hdul if getattr(h, "data", None) is not None), None)
                if hdu is None:
                    raise ValueError("no image data")
                data, header = np.asarray(hdu.data, dtype=np.float64), hdu.header.copy()
    except FileNotFoundError:
        raise
    except Exception as err:  # astropy raises OSError, TypeError, ValueError... for corrupt files
        raise ValueError(f"{path}: not a readable FITS image ({err})") from None
    data = np.squeeze(data)
    if data.ndim != 2:
        raise ValueError(f"{path}: expected a 2-D image, got {data.ndim} dimensions")
    if not np.isfinite(data).all():
        raise ValueError(f"{path}: image contains NaN or inf pixels")
    return data, header


def cube_header(N: int, ra_deg: float, dec_deg: float, pixel_scale_arcsec: float, freq_hz: float,
                date_obs: str = "", *, bandwidth_hz: float = 1.0, stokes: bool = False) -> fits.Header:
    """RA---SIN / DEC--SIN at the phase centre, CDELT from the pixel scale, a FREQ axis (CDELT3 the bandwidth),
    with ``stokes`` a fourth axis STOKES = I (1), DATE-OBS."""
    w = WCS(naxis=4 if stokes else 3)
    w.wcs.ctype = ["RA---SIN", "DEC--SIN", "FREQ"] + ["STOKES"] * stokes
    w.wcs.crpix = [N // 2 + 1, N // 2 + 1, 1] + [1] * stokes
    w.wcs.crval = [ra_deg, dec_deg, freq_hz] + [1.0] * stokes
    w.wcs.cdelt = [-pixel_scale_arcsec / 3600.0, pixel_scale_arcsec / 3600.0, bandwidth_hz] + [1.0] * stokes
    w.wcs.cunit = ["deg", "deg", "Hz"] + [""] * stokes
    w.wcs.radesys, w.wcs.equinox = "ICRS", 2000.0
    if date_obs:
        w.wcs.dateobs = date_obs
    header = w.to_header()
    header["ORIGIN"] = f"radio-ddrm {ddrm.__version__}"
    return header


def beam_cards(major_px: float, minor_px: float, pa_deg: float, pixel_scale_arcsec: float) -> dict:
    """BMAJ, BMIN (deg, FWHM) and BPA (deg, North through East) of a clean beam given in pixels."""
    return {"BMAJ": major_px * pixel_scale_arcsec / 3600.0, "BMIN": minor_px * pixel_scale_arcsec / 3600.0,
            "BPA": pa_deg}


def multi_extension_fits(products: dict, header: fits.Header, cards: Optional[dict] = None) -> bytes:
    """One FITS file: the first product in the primary HDU, the others as IMAGE extensions named by
    their keys; ``products`` maps name -> (image (N, N), or a stack (S, N, N) written as (S, 1, N, N) with a
    fourth axis SAMPLE, BUNIT, extra cards)."""
    hdus = []
    for i, (name, (image, bunit, extra)) in enumerate(products.items()):
        image = np.asarray(image, dtype=np.float32)
        data = image[:, None] if image.ndim == 3 else image[None]
        h = header.copy()
        if image.ndim == 3:
            h["CTYPE4"], h["CRPIX4"], h["CRVAL4"], h["CDELT4"] = "SAMPLE", 1.0, 1.0, 1.0
        h["BUNIT"], h["PRODUCT"] = bunit, name
        for key, value in {**(cards or {}), **(extra or {})}.items():
            h[key[:8].upper()] = value
        hdus.append(fits.PrimaryHDU(data, h) if i == 0 else fits.ImageHDU(data, h, name=name.upper()))
    buffer = io.BytesIO()
    fits.HDUList(hdus).writeto(buffer)
    return buffer.getvalue()

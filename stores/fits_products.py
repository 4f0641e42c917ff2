"""One imaged observation as the files a radio astronomer's tools open, in WSClean's habit:

    <name>-image.fits      the posterior mean restored with the CLEAN beam: mean ⊛ beam (peak 1), Jy/beam
    <name>-model.fits      the posterior mean, Jy/pixel
    <name>-std.fits        the posterior standard deviation, Jy/pixel
    <name>-residual.fits   the dirty image of the data minus the mean's visibilities, Jy/beam
    <name>-psf.fits        the point-spread function, peak 1 at the phase centre
    <name>-dirty.fits      the dirty image, Jy/beam
    <name>-clean.fits      Hogbom CLEAN's restored image (components ⊛ beam + residual), Jy/beam
    <name>-significance.fits, <name>-detection.fits    mean/std, and P(x > 3 off-source rms) per pixel
    <name>-std-recalibrated.fits   with --holdout: the std times the conformal scale c of the held-out check
                                   (the 68 % interval's half-width)
    <name>-halfwidth95-recalibrated.fits   with --holdout: that times the held-out 95 % bound k on |z| (the
                                   95 % interval's half-width; 2 × the std for a Gaussian posterior)

Each is a primary HDU of four axes (RA---SIN, DEC--SIN, FREQ with CDELT3 the bandwidth, STOKES = I), with
BUNIT, BMAJ/BMIN/BPA (degrees), DATE-OBS, OBJECT, TELESCOP, and provenance: keywords with comments for the
package version, the input and its SHA256, the prior and its SHA256, the chosen pixel scale and every
setting, and HISTORY lines with the command line and the settings as JSON.
"""

from __future__ import annotations

import io
import json
import textwrap
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from astropy.io import fits

import ddrm
from stores.fits_io import cube_header

PRODUCTS = ("image", "model", "std", "residual", "psf", "dirty", "clean", "significance", "detection",
            "std-recalibrated", "halfwidth95-recalibrated")
UNITS = {"image": "Jy/beam", "model": "Jy/pixel", "std": "Jy/pixel", "residual": "Jy/beam", "psf": "",
         "dirty": "Jy/beam", "clean": "Jy/beam", "significance": "", "detection": "", "std-recalibrated": "Jy/pixel",
         "halfwidth95-recalibrated": "Jy/pixel"}
WHAT = {"image": "posterior mean restored: mean conv. CLEAN beam (no residual added)",
        "model": "posterior mean (sky model)", "std": "posterior standard deviation",
        "residual": "dirty image of the data minus the mean's visibilities", "psf": "point-spread function (peak 1)",
        "dirty": "dirty image", "clean": "Hogbom CLEAN restored (components conv. beam + residual)",
        "significance": "posterior mean / posterior std", "detection": "P(x > k off-source rms), share of samples",
        "std-recalibrated": "std x conformal scale from held-out data",
        "halfwidth95-recalibrated": "95% half-width: k c std, held-out fit"}
SETTING_KEYS = {"N": ("NPIX", "image size in pixels"), "K": ("DDRM_K", "diffusion steps K"),
                "samples": ("SAMPLES", "posterior samples S"), "weighting": ("WEIGHTNG", "imaging weighting"),
                "robust": ("ROBUST", "Briggs robustness"), "noise": ("NOISESRC", "sigma from weights or scatter"),
                "likelihood": ("LIKELIHD", "data term: exact or gridded"), "holdout": ("HOLDOUT",
                                                                                   "held-out fraction"),
                "selfcal": ("SELFCAL", "self-calibration requested"), "seed": ("SEED", "random seed"),
                "prior": ("PRIOR", "prior name or path")}


@dataclass(frozen=True)
class Provenance:
    """What made a product: the command line, the input and its SHA256, the prior's SHA256, the run key, the
    settings (a JSON-able dict, written whole to HISTORY; the cards of ``SETTING_KEYS`` read it by option
    name, a nested config through its ``options``) and the self-calibration applied."""

    command: str
    input_file: str
    input_sha256: str
    prior_sha256: str
    run_key: str
    settings: dict
    selfcal: str = "none"
    options: dict = field(default_factory=dict)  # option name -> value (the command line's names)


def product_header(N: int, *, ra_deg: float, dec_deg: float, pixel_scale_arcsec: float, freq_hz: float,
                   bandwidth_hz: float, date_obs: str, telescope: str, source: str, bunit: str,
                   beam_deg: Optional[tuple[float, float, float]], provenance: Provenance) -> fits.Header:
    """The four-axis header of one product (module docstring); ``beam_deg`` (BMAJ, BMIN, BPA) in degrees."""
    h = cube_header(N, ra_deg, dec_deg, pixel_scale_arcsec, freq_hz, date_obs, bandwidth_hz=bandwidth_hz or 1.0,
                    stokes=True)
    h["BUNIT"] = (bunit, "brightness unit")
    if beam_deg is not None:
        h["BMAJ"], h["BMIN"], h["BPA"] = ((beam_deg[0], "beam major FWHM (deg)"),
                                          (beam_deg[1], "beam minor FWHM (deg)"),
                                          (beam_deg[2], "beam PA (deg, N through E)"))
    h["TELESCOP"] = (telescope[:68], "from the input")
    h["OBJECT"] = (source[:68], "from the input")
    return _provenance(h, pixel_scale_arcsec, provenance)


def _provenance(h: fits.Header, scale: float, p: Provenance) -> fits.Header:
    h["PIXSCALE"] = (scale, "chosen pixel scale (arcsec)")
    for key, (card, comment) in SETTING_KEYS.items():
        value = p.options.get(key, p.settings.get(key))
        if isinstance(value, (bool, int, float, str)):
            h[card] = (value if not isinstance(value, str) else value[:60], comment)
    h["SELFCALA"] = (p.selfcal, "self-calibration applied")
    h["RUNKEY"] = (p.run_key, "radio-ddrm run key (hash of every setting)")
    h["INSHA256"] = p.input_sha256[:64]  # a 64-character value leaves no room for a comment on the card
    h["PRSHA256"] = p.prior_sha256[:64]
    h.add_comment("INSHA256: SHA256 of the input's bytes; PRSHA256: SHA256 of the prior's weights")
    h.add_history(f"radio-ddrm {ddrm.__version__}")
    for line in textwrap.wrap(f"command: {p.command}", 70) + textwrap.wrap(f"input: {p.input_file}", 70) + \
            textwrap.wrap(f"settings: {json.dumps(p.settings, sort_keys=True, default=str)}", 70):
        h.add_history(line)
    return h


def product_bytes(image: np.ndarray, header: fits.Header, name: str) -> bytes:
    """One product (N, N) as FITS bytes of shape (1, 1, N, N) under ``header`` (``product_header``)."""
    h = header.copy()
    h["PRODUCT"] = (name, WHAT.get(name, "")[:44])
    buffer = io.BytesIO()
    fits.PrimaryHDU(np.asarray(image, np.float32)[None, None], h).writeto(buffer)
    return buffer.getvalue()


def centred_psf(psf: np.ndarray, N: int) -> np.ndarray:
    """The N×N window of a (2N, 2N) PSF whose peak is at pixel (0, 0) (``dirty.nufft_psf``), peak at (N//2, N//2)."""
    full = np.roll(np.asarray(psf), (N, N), axis=(0, 1))
    lo = N - N // 2
    return full[lo:lo + N, lo:lo + N]

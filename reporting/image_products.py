"""Every product of one imaged observation, rendered to bytes (nothing written here): the WSClean-style FITS
files (``stores.fits_products``), the multi-extension ``image.fits`` the flow reads, the panel
(``imaging_panel``), the diagnostics (``imaging_diagnostics``) and the gains table; and the summary's figures
for people (beam, peak, residual rms, the pixel scale in a readable unit)."""

from __future__ import annotations

import os
import textwrap
from typing import Any, Optional

import numpy as np
import torch

from ddrm.radio.baselines import restore
from ddrm.radio.closure import closure_phase
from ddrm.radio.gridding import ARCSEC
from ddrm.radio.imaging import Imaged
from ddrm.radio.nufft import degrid
from reporting.imaging_diagnostics import diagnostics_png
from reporting.imaging_panel import Panel, _unit, imaging_panel_png
from ddrm.radio.visibilities import Visibilities
from stores.fits_io import beam_cards, cube_header, multi_extension_fits
from stores.fits_products import PRODUCTS, UNITS, Provenance, centred_psf, product_bytes, product_header

EXTENSIONS = (".gz", ".bz2", ".uvfits", ".uvf", ".fits", ".fit", ".ms")


def product_name(source: str) -> str:
    """The products' prefix: the input's file name without its extensions (``obs.uvfits.gz`` -> ``obs``)."""
    name = os.path.basename(source.rstrip("/")) or "observation"
    for _ in range(2):
        for ext in EXTENSIONS:
            if name.lower().endswith(ext) and len(name) > len(ext):
                name = name[:-len(ext)]
    return name


def sky_images(imaged: Imaged, residual: torch.Tensor, N: int, extra: Optional[dict] = None) -> dict[str, np.ndarray]:
    """name -> (N, N) of ``stores.fits_products.PRODUCTS`` (``extra``: the structure maps, the recalibrated std)."""
    r = imaged.result
    mean = r.mean.numpy().astype(np.float64)
    image = restore(r.mean.double()[None], torch.zeros(1, N, N, dtype=torch.float64), r.beam, 0).restored[0]
    return {"image": image.numpy(), "model": mean, "std": r.std.numpy(),
            "residual": residual.numpy(), "psf": centred_psf(imaged.prepared.psf.numpy(), N),
            "dirty": r.dirty.numpy(), "clean": r.clean.numpy(), **(extra or {})}


def people_figures(images: dict[str, np.ndarray], imaged: Imaged, scale: float) -> dict[str, Any]:
    """The summary's figures for people: the pixel scale and beam in a readable unit, the restored mean's and
    CLEAN's peaks and the residual's rms (Jy/beam)."""
    major, minor = imaged.result.beam.fwhm_pixels
    label, per = _unit(imaged.prepared.dirty.shape[-1] * scale)
    return {"pixel_scale": f"{scale / per:.4g} {label}",
            "beam": {"major": f"{major * scale / per:.4g} {label}", "minor": f"{minor * scale / per:.4g} {label}",
                     "position_angle_deg": imaged.result.beam.position_angle_deg},
            "peak_jy_per_beam": float(images["image"].max()), "peak_clean_jy_per_beam": float(images["clean"].max()),
            "residual_rms_jy_per_beam": float(np.sqrt(np.mean(images["residual"] ** 2)))}


def render_products(*, name: str, vis: Visibilities, raw: Visibilities, imaged: Imaged, scale: float, N: int,
                    images: dict[str, np.ndarray], model_vis: np.ndarray, gains: Optional[bytes],
                    provenance: Provenance, chi2: tuple[float, float],
                    heldout_z: Optional[np.ndarray] = None, closures=None, note: Optional[str] = None) -> dict[str, bytes]:
    """File name -> bytes of every product (module docstring); ``model_vis`` the mean's visibilities at the
    imaged data (``imaged.prepared.likelihood_data``); ``chi2`` (the mean's, CLEAN's) on the raw data;
    ``closures`` those of the raw on-field data (``radio.closure.Closures``), None: no closure panel; ``note`` a
    warning the figures' titles carry (``ClosureFit.warning``)."""
    r = imaged.result
    major, minor = r.beam.fwhm_pixels
    cards = beam_cards(major, minor, r.beam.position_angle_deg, scale)
    beam_deg = (cards["BMAJ"], cards["BMIN"], cards["BPA"])
    out = {}
    for product in (p for p in PRODUCTS if p in images):
        header = product_header(N, ra_deg=vis.ra_deg, dec_deg=vis.dec_deg, pixel_scale_arcsec=scale,
                                freq_hz=vis.ref_freq_hz, bandwidth_hz=vis.bandwidth_hz, date_obs=vis.date_obs,
                                telescope=vis.telescope, source=vis.source, bunit=UNITS[product],
                                beam_deg=beam_deg if UNITS[product] == "Jy/beam" else None, provenance=provenance)
        out[f"{name}-{product}.fits"] = product_bytes(images[product], header, product)
    out["image.fits"] = _multi_extension(vis, r, scale, N, images, cards)
    title = _title(vis, chi2) + (f"\n{textwrap.fill(note, 100)}" if note else "")
    out["panel.png"] = _panel(images, r.beam, scale, title)
    out["diagnostics.png"] = _diagnostics(raw, imaged, scale, model_vis, title, heldout_z, closures)
    return out if gains is None else {**out, "gains.csv": gains}


def _multi_extension(vis: Visibilities, r, scale: float, N: int, images: dict, beam: dict) -> bytes:
    header = cube_header(N, vis.ra_deg, vis.dec_deg, scale, vis.ref_freq_hz, vis.date_obs)
    cards = {"TELESCOP": vis.telescope, "OBJECT": vis.source, "FLUXSCL": r.flux_scale}
    return multi_extension_fits({"mean": (images["model"], "Jy/pixel", None), "std": (images["std"], "Jy/pixel", None),
                                 "dirty": (images["dirty"], "Jy/beam", beam), "clean": (images["clean"], "Jy/beam", beam),
                                 "residual": (images["residual"], "Jy/beam", beam),
                                 "samples": (r.samples.numpy(), "Jy/pixel", None)}, header, cards)


def _title(vis: Visibilities, chi2: tuple[float, float]) -> str:
    source = vis.source or os.path.basename(vis.path.rstrip("/"))
    return (f"{source} · {vis.ref_freq_hz / 1e9:.4g} GHz · {vis.date_obs or 'date unknown'} · raw χ² "
            f"mean {chi2[0]:.3g}, CLEAN {chi2[1]:.3g}")


def _panel(images: dict[str, np.ndarray], beam, scale: float, title: str) -> bytes:
    panels = [Panel("dirty", images["dirty"], "Jy/beam"), Panel("CLEAN, restored", images["clean"], "Jy/beam",
                                                                group="restored"),
              Panel("mean, restored", images["image"], "Jy/beam", group="restored"),
              Panel("posterior std", images["std"], "Jy/pixel"), Panel("residual", images["residual"], "Jy/beam",
                                                                      "residual"),
              Panel("mean / std", np.clip(np.nan_to_num(images["significance"]), 0, None), "",
                    "ratio")]
    return imaging_panel_png(panels, scale, beam.fwhm_pixels, beam.position_angle_deg, title)


def _diagnostics(raw: Visibilities, imaged: Imaged, scale: float, model_vis: np.ndarray, title: str,
                 heldout_z: Optional[np.ndarray], cl) -> bytes:
    imaged_on = imaged.prepared.likelihood_data(imaged.data)
    on = imaged.prepared.on
    raw_uv = raw.uv[on]
    hours, resid = np.zeros(0), np.zeros(0)
    if cl is not None and len(cl.phase):
        model = np.asarray(degrid(uv=raw_uv, image=imaged.result.mean.double()[None], pixel_size=scale * ARCSEC))[0]
        d = cl.phase - closure_phase(model, cl.triangles, cl.signs)
        resid = np.angle(np.exp(1j * d)) / cl.sigma_phase
        t = raw.time_jd[on][cl.triangles[:, 0]]
        hours = (t - t.min()) * 24
    return diagnostics_png(imaged_on.uv, imaged_on.vis, imaged_on.weight, np.asarray(model_vis), hours,
                           resid, title, heldout_z)

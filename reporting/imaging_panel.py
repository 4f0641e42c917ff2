"""The panel of one imaged observation, as a radio astronomer reads it: dirty, CLEAN, posterior mean,
posterior std and the residual (the dirty image of the data minus the model), each at least 300 px, in
Jy/beam with a colourbar, an asinh stretch (radio images span 10³ in brightness or more), the restoring
beam drawn, and axes in relative RA and Dec (RA growing to the left). Text from the file's header (the
title) is drawn as plain text, never parsed as mathtext."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import AsinhNorm  # noqa: E402
from matplotlib.patches import Ellipse  # noqa: E402

PANEL_INCHES, DPI = 3.4, 100  # 340 px per image


def _unit(field_arcsec: float) -> tuple[str, float]:
    """(label, arcsec per unit) that keeps the field's numbers readable."""
    if field_arcsec < 1:
        return ("μas", 1e-6) if field_arcsec < 1e-3 else ("mas", 1e-3)
    return "arcsec", 1.0


def imaging_panel_png(images: dict[str, np.ndarray], pixel_scale_arcsec: float, beam_fwhm_pixels: tuple[float, float],
                      beam_pa_deg: float, title: str, linear_width: float = 0.02) -> bytes:
    """PNG of the images (name -> (N, N) Jy/beam, row 0 South, column 0 East... as written to FITS), each
    with its own asinh stretch whose linear part is ``linear_width`` of its peak."""
    N = next(iter(images.values())).shape[-1]
    label, per = _unit(N * pixel_scale_arcsec)
    half = N * pixel_scale_arcsec / per / 2
    extent = (half, -half, -half, half)  # RA increases to the East, to the left
    fig, axes = plt.subplots(1, len(images), figsize=(PANEL_INCHES * len(images) * 1.45, PANEL_INCHES * 1.25), dpi=DPI)
    fig.subplots_adjust(left=0.04, right=0.97, bottom=0.14, top=0.86, wspace=0.55)
    for ax, (name, img) in zip(np.atleast_1d(axes), images.items()):
        img = np.asarray(img, dtype=np.float64)
        peak = max(float(np.nanmax(np.abs(img))), 1e-30)
        shown = ax.imshow(img, origin="lower", extent=extent, cmap="inferno" if name != "residual" else "RdBu_r",
                          norm=AsinhNorm(linear_width=linear_width * peak, vmin=-peak if name == "residual" else
                                         min(float(np.nanmin(img)), 0.0), vmax=peak))
        fig.colorbar(shown, ax=ax, shrink=0.85, label="Jy/beam")
        major, minor = (f * pixel_scale_arcsec / per for f in beam_fwhm_pixels)
        corner = (0.8 * half, -0.8 * half)
        ax.add_patch(Ellipse(corner, minor, major, angle=-beam_pa_deg, facecolor="none", edgecolor="cyan", lw=1.2))
        ax.set(title=name, xlabel=f"ΔRA [{label}]", ylabel=f"ΔDec [{label}]")
    fig.suptitle(title, parse_math=False)  # header text (OBJECT) is plain text: '$' is no mathtext
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    plt.close(fig)
    return buffer.getvalue()

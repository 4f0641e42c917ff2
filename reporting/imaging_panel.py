"""The panel of one imaged observation, as a radio astronomer reads it, two rows of three at README width:
dirty, CLEAN (restored) and the posterior mean restored with the same beam, on one colour scale, in Jy/beam;
the posterior std (Jy/pixel), the residual (Jy/beam, symmetric) and the significance mean/std. An asinh
stretch (radio images span 10³ in brightness or more), a colourbar with its unit on each, the restoring beam
drawn, axes in relative RA and Dec (RA growing to the left). Text from the file's header (the title) is
drawn as plain text, never parsed as mathtext."""

from __future__ import annotations

import io
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import AsinhNorm, Normalize  # noqa: E402
from matplotlib.patches import Ellipse  # noqa: E402

PANEL_INCHES, DPI = 3.0, 100  # about 900 px wide in all


@dataclass(frozen=True)
class Panel:
    """One image (N, N) with its title, unit and kind: "sky" (asinh, from 0), "residual" (symmetric, linear),
    "ratio" (linear from 0); images of one ``group`` share one colour scale."""

    title: str
    image: np.ndarray
    unit: str
    kind: str = "sky"
    group: str = ""


def _unit(field_arcsec: float) -> tuple[str, float]:
    """(label, arcsec per unit) that keeps the field's numbers readable."""
    if field_arcsec < 1:
        return ("μas", 1e-6) if field_arcsec < 1e-3 else ("mas", 1e-3)
    return "arcsec", 1.0


def _norm(panel: Panel, peaks: dict[str, tuple[float, float]], linear_width: float):
    img = np.asarray(panel.image, np.float64)
    lo, hi = peaks.get(panel.group) if panel.group else (float(np.nanmin(img)), float(np.nanmax(img)))
    if panel.kind == "residual":
        top = max(abs(lo), abs(hi), 1e-30)
        return Normalize(-top, top), "RdBu_r"
    if panel.kind == "ratio":  # a few pixels where the std vanishes would flatten the rest: 99.5th percentile
        return Normalize(0.0, max(float(np.nanpercentile(img, 99.5)), 1e-30)), "viridis"
    top = max(hi, 1e-30)
    return AsinhNorm(linear_width=linear_width * top, vmin=min(lo, 0.0), vmax=top), "inferno"


TITLE_LINE_INCHES = 0.25  # the height each further line of a figure's title adds


def title_room(height: float, top_share: float, title: str) -> tuple[float, float]:
    """(figure height, subplots' top) in inches and as a figure fraction: ``height`` with a one-line title above
    ``top_share`` of it, grown by ``TITLE_LINE_INCHES`` for each further line of ``title``."""
    extra = TITLE_LINE_INCHES * title.count("\n")
    return height + extra, 1 - (top_share * height + extra) / (height + extra)


def imaging_panel_png(panels: list[Panel], pixel_scale_arcsec: float, beam_fwhm_pixels: tuple[float, float],
                      beam_pa_deg: float, title: str, linear_width: float = 0.02) -> bytes:
    """PNG of the panels (module docstring), row 0 South and column 0 East as written to FITS."""
    N = panels[0].image.shape[-1]
    label, per = _unit(N * pixel_scale_arcsec)
    half = N * pixel_scale_arcsec / per / 2
    extent = (half, -half, -half, half)  # RA increases to the East, to the left
    peaks: dict[str, tuple[float, float]] = {}
    for p in panels:
        if p.group:
            lo, hi = peaks.get(p.group, (np.inf, -np.inf))
            peaks[p.group] = (min(lo, float(np.nanmin(p.image))), max(hi, float(np.nanmax(p.image))))
    cols = 3
    rows = -(-len(panels) // cols)
    height, top = title_room(PANEL_INCHES * 0.85 * rows + 0.5, 0.12, title)
    fig, axes = plt.subplots(rows, cols, figsize=(PANEL_INCHES * cols, height), dpi=DPI, squeeze=False)
    fig.subplots_adjust(left=0.07, right=0.96, bottom=0.08, top=top, wspace=0.6, hspace=0.45)
    major, minor = (f * pixel_scale_arcsec / per for f in beam_fwhm_pixels)
    for ax, p in zip(axes.ravel(), panels):
        norm, cmap = _norm(p, peaks, linear_width)
        shown = ax.imshow(np.asarray(p.image, np.float64), origin="lower", extent=extent, cmap=cmap, norm=norm)
        bar = fig.colorbar(shown, ax=ax, shrink=0.85)
        bar.ax.tick_params(labelsize=7)
        if p.kind == "sky":
            ax.add_patch(Ellipse((0.8 * half, -0.8 * half), minor, major, angle=-beam_pa_deg, facecolor="none",
                                 edgecolor="cyan", lw=1.2))
        ax.set_title(f"{p.title} [{p.unit}]" if p.unit else p.title, fontsize=9, parse_math=False)
        ax.set_xlabel(f"ΔRA [{label}]", fontsize=8)
        ax.set_ylabel(f"ΔDec [{label}]", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(panels):]:
        ax.axis("off")
    fig.suptitle(title, fontsize=11, parse_math=False)  # header text (OBJECT) is plain text: '$' is no mathtext
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    plt.close(fig)
    return buffer.getvalue()

"""Diagnostics of one imaged observation, in the habit of ehtim's ``plotall``: the data's amplitude and phase
against uv distance with the posterior mean's model visibilities over them, the normalised residuals of the
visibilities, (V - M)/σ with σ = 1/√w per real coordinate, against N(0, 1) (with ``--holdout``, the
held-out posterior predictive z of ``ddrm.radio.predictive`` beside them), and the closure-phase
residuals
wrap(φ_C - φ_C^model)/σ_φ against time."""

from __future__ import annotations

import io
from typing import Optional

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from reporting.imaging_panel import title_room  # noqa: E402

MAX_POINTS = 4000  # visibilities drawn in the amplitude and phase panels (all of them enter the histograms)


def diagnostics_png(uv: np.ndarray, vis: np.ndarray, weight: np.ndarray, model: np.ndarray,
                    closure_time_h: np.ndarray, closure_residual: np.ndarray, title: str,
                    heldout_z: Optional[np.ndarray] = None) -> bytes:
    """PNG of 2×2 panels: uv (n, 2) wavelengths, data ``vis`` (n,) Jy with weights (n,) and the mean's
    ``model`` (n,); closure-phase residuals in σ (T,) at hours ``closure_time_h`` (T,) (may be empty)."""
    shown = np.sort(np.random.default_rng(0).permutation(len(vis))[:MAX_POINTS])  # a seeded subset to draw
    dist = np.hypot(uv[shown, 0], uv[shown, 1]) / 1e9  # Gλ
    unit, dist = ("Gλ", dist) if dist.max() > 0.5 else ("Mλ", dist * 1e3)
    height, top = title_room(6.4, 0.1, title)
    fig, axes = plt.subplots(2, 2, figsize=(9.0, height), dpi=100)
    fig.subplots_adjust(left=0.08, right=0.97, bottom=0.09, top=top, wspace=0.28, hspace=0.4)
    (amp, phase), (resid, closure) = axes
    amp.plot(dist, np.abs(vis[shown]), ".", ms=2, color="0.5", label="data")
    amp.plot(dist, np.abs(model[shown]), ".", ms=2, color="C3", label="posterior mean")
    amp.set(xlabel=f"uv distance [{unit}]", ylabel="amplitude [Jy]", yscale="log", title="amplitude")
    amp.legend(fontsize=7, markerscale=4)
    phase.plot(dist, np.degrees(np.angle(vis[shown])), ".", ms=2, color="0.5")
    phase.plot(dist, np.degrees(np.angle(model[shown])), ".", ms=2, color="C3")
    phase.set(xlabel=f"uv distance [{unit}]", ylabel="phase [deg]", ylim=(-180, 180), title="phase")
    z = np.concatenate([(vis - model).real, (vis - model).imag]) * np.sqrt(np.concatenate([weight, weight]))
    z = z[np.isfinite(z)]
    bins = np.linspace(-5, 5, 51)
    resid.hist(np.clip(z, -5, 5), bins=bins, density=True, color="0.6", label=f"rms {np.sqrt(np.mean(z ** 2)):.2f}")
    grid = np.linspace(-5, 5, 201)
    if heldout_z is not None and len(heldout_z):
        resid.hist(np.clip(heldout_z, -5, 5), bins=bins, density=True, histtype="step", color="C1", lw=1.5,
                   label=f"held-out z ({np.mean(np.abs(heldout_z) < 1):.2f} in ±1)")
    resid.plot(grid, np.exp(-grid ** 2 / 2) / np.sqrt(2 * np.pi), color="C0", label="N(0, 1)")
    resid.set(xlabel="(V - M) / σ", ylabel="density", title="visibility residuals")
    resid.legend(fontsize=7)
    if len(closure_residual):
        closure.plot(closure_time_h, closure_residual, ".", ms=3, color="C2")
        closure.axhline(0, color="0.3", lw=0.8)
        closure.set_title(f"closure-phase residuals (rms {np.sqrt(np.mean(closure_residual ** 2)):.2f} σ)",
                          fontsize=10)
    else:
        closure.text(0.5, 0.5, "no closure phase (S/N >= 3)", ha="center", va="center", transform=closure.transAxes)
        closure.set_title("closure-phase residuals", fontsize=10)
    closure.set(xlabel="time [h]", ylabel="Δφ_C / σ")
    fig.suptitle(title, fontsize=11, parse_math=False)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()

"""PNG pictures of uv-coverage, gridded masks and dirty beams (matplotlib, Agg)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence, Union

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from ddrm.inverse.operators import FourierSamplingOperator  # noqa: E402
from ddrm.radio import ArrayObservation  # noqa: E402
from ddrm.radio.baselines import dirty_beam  # noqa: E402

PathLike = Union[str, Path]


def plot_uv_coverage(obs: ArrayObservation, path: PathLike, max_points: int = 200_000) -> Path:
    """Two panels: the uv samples (Mλ) and the gridded mask (centred, log counts)."""
    uvw = obs.coverage.uvw
    step = max(1, len(uvw) // max_points)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4.6))
    a.scatter(uvw[::step, 0] / 1e6, uvw[::step, 1] / 1e6, s=0.3, c="k")
    a.set(xlabel="u [Mλ]", ylabel="v [Mλ]", aspect="equal",
          title=f"{obs.config.layout}: {obs.coverage.n_baselines} baselines, {obs.coverage.n_times} times")
    counts = torch.fft.fftshift(obs.gridded.counts).numpy()
    im = b.imshow(np.log10(1 + counts), origin="lower", cmap="magma")
    b.set(title=f"gridded N={obs.N}: {obs.gridded.fraction_sampled:.1%} of cells, "
                f"{obs.pixel_scale_arcsec:.3g}\"/px", xlabel="k_col (u)", ylabel="k_row (-v)")
    fig.colorbar(im, ax=b, label="log10(1 + n_k)")
    return _save(fig, path)


def plot_dirty_beam(op: FourierSamplingOperator, path: PathLike, title: str = "dirty beam") -> Path:
    """The peak-normalised dirty beam, centred."""
    psf = torch.fft.fftshift(dirty_beam(op)).numpy()
    fig, ax = plt.subplots(figsize=(5, 4.6))
    im = ax.imshow(psf, origin="lower", cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set(title=title, xlabel="col (East left)", ylabel="row (North up)")
    fig.colorbar(im, ax=ax)
    return _save(fig, path)


def _save(fig, path: PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def image_grid_png(images: np.ndarray, titles: Sequence[str] = (), ncols: int = 8, stretch: str = "sqrt") -> bytes:
    """PNG bytes of a grid of images (n, N, N) in [0, 1], row 0 at the bottom (South), sqrt stretch."""
    n = len(images)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.6 * ncols, 1.7 * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            shown = np.sqrt(np.clip(images[i], 0, None)) if stretch == "sqrt" else images[i]
            ax.imshow(shown, cmap="inferno", origin="lower", vmin=0, vmax=1)
            if i < len(titles):
                ax.set_title(titles[i], fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=72)
    plt.close(fig)
    return buffer.getvalue()


def loss_curve_png(steps: Sequence[int], losses: Sequence[float], title: str = "") -> bytes:
    """PNG bytes of the training loss against step (log scale)."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(steps, losses, lw=1.2)
    ax.set(xlabel="step", ylabel="ε-MSE loss", yscale="log", title=title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=72)
    plt.close(fig)
    return buffer.getvalue()


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=72)
    plt.close(fig)
    return buffer.getvalue()


def gallery_png(panels: Sequence[Sequence[np.ndarray]], row_labels: Sequence[str], col_labels: Sequence[str]) -> bytes:
    """Rows of images (truth, dirty, CLEAN, mean, std, residual...), each with a colourbar: [0, 1] panels share
    a sqrt stretch; a 'dirty' column gets its own robust scale (0.5th-99.8th percentile: a dirty image is not
    in [0, 1], and its sidelobes go negative); a 'residual' column is diverging at ± its 99th percentile of
    |residual| (a few pixels would otherwise wash the rest out); 'posterior std' has its own scale. Row
    labels (one per line at spaces) sit left of each row."""
    nrows, ncols = len(panels), len(col_labels)
    fig, axes = plt.subplots(max(nrows, 1), ncols, figsize=(2.3 * ncols + 0.6, 2.05 * max(nrows, 1) + 0.3),
                             squeeze=False)
    for r, row in enumerate(panels):
        for c, image in enumerate(row):
            ax, label = axes[r, c], col_labels[c]
            image = np.asarray(image, np.float64)
            if label == "residual":
                lim = float(np.percentile(np.abs(image), 99)) or float(np.abs(image).max()) or 1.0
                shown = ax.imshow(image, cmap="RdBu_r", vmin=-lim, vmax=lim, origin="lower")
            elif label == "posterior std":
                shown = ax.imshow(image, cmap="viridis", origin="lower")
            elif label == "dirty":
                lo, hi = np.percentile(image, [0.5, 99.8])
                shown = ax.imshow(image, cmap="inferno", vmin=lo, vmax=hi if hi > lo else lo + 1, origin="lower")
            else:
                shown = ax.imshow(np.sqrt(np.clip(image, 0, 1)), cmap="inferno", vmin=0, vmax=1, origin="lower")
            bar = fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.03)
            bar.ax.tick_params(labelsize=6)
            ax.set_xticks([]), ax.set_yticks([])
            if r == 0:
                ax.set_title(label + (" (sqrt)" if label not in ("residual", "posterior std", "dirty") else ""),
                             fontsize=9)
            if c == 0:
                ax.set_ylabel(row_labels[r].replace(" ", "\n"), fontsize=8)
    fig.tight_layout()
    return _png(fig)


def psnr_vs_K_png(rows: Sequence[dict], samplers: Sequence[str] = ("DDRM",)) -> bytes:
    """PSNR (mean ± std) against K per array: each sampler as a curve, dirty and CLEAN as flat lines."""
    arrays = list(dict.fromkeys(r["array"] for r in rows))
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for i, array in enumerate(arrays):
        colour = f"C{i}"
        for j, sampler in enumerate(samplers):
            curve = sorted((r for r in rows if r["array"] == array and r["method"] == sampler), key=lambda r: r["K"])
            ax.errorbar([r["K"] for r in curve], [r["psnr_mean"] for r in curve], yerr=[r["psnr_std"] for r in curve],
                        color=colour, marker="osD^"[j % 4], capsize=3, label=f"{array} {sampler}")
        for method, style in (("CLEAN", "--"), ("dirty", ":")):
            values = [r["psnr_mean"] for r in rows if r["array"] == array and r["method"] == method]
            if values:
                ax.axhline(values[0], color=colour, ls=style, lw=1, label=f"{array} {method}")
    ax.set(xscale="log", xlabel="DDRM steps K", ylabel="PSNR [dB]", title="PSNR against K")
    ax.legend(fontsize=7, ncol=max(1, len(arrays)))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def reliability_png(levels: Sequence[float], curves: dict[str, tuple[Sequence[float], Sequence[float]]]) -> bytes:
    """Reliability diagram: expected against observed coverage; per label (raw, recalibrated) curves."""
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    for i, (label, (raw, cal)) in enumerate(curves.items()):
        colour = f"C{i % 10}"
        ax.plot(levels, raw, "o-", ms=3, color=colour, label=label)
        if len(cal):
            ax.plot(levels, cal, "--", color=colour, lw=1)
    ax.set_xlabel("expected coverage (S-corrected interval)")
    ax.set_ylabel("observed coverage, source pixels (test split)")
    ax.set_title("raw (solid) and recalibrated (dashed)", fontsize=9)
    ax.legend(fontsize=6)
    fig.tight_layout()
    return _png(fig)

"""From "an array and an observation" to the Fourier operator DDRM uses, built once per array."""

from __future__ import annotations

import io
from dataclasses import dataclass
from importlib import resources
from typing import Union

import numpy as np
import torch

from ..operators.fourier import FourierSamplingOperator, Weighting
from .coverage import ObservationConfig, UVCoverage, observation_preset, uv_coverage
from .gridding import GriddedCoverage, cell_coordinates, fit_pixel_scale, grid_counts
from .layouts import Layout, load_layout

PAPER_MASKS = {"vla": "VLA_mask_150.npy", "eht": "EHT_mask_150.npy", "alma": "ALMA_mask_150.npy"}


@dataclass(frozen=True, eq=False)
class ArrayObservation:
    """Everything one (array, observation, N) gives: coverage, gridded counts and the operator."""

    config: ObservationConfig
    layout: Layout
    coverage: UVCoverage
    gridded: GriddedCoverage
    op: FourierSamplingOperator

    @property
    def N(self) -> int:
        return self.op.N

    @property
    def pixel_scale_arcsec(self) -> float:
        return self.gridded.pixel_scale_arcsec

    def cell_coordinates(self) -> np.ndarray:
        """Continuous (k_row, k_col) of every uv sample, for exact visibilities."""
        return cell_coordinates(self.coverage.uvw, self.N, self.pixel_scale_arcsec)


def observe_array(
    obs: Union[str, ObservationConfig],
    N: int,
    *,
    layout: Union[Layout, None] = None,
    weighting: Weighting = "natural",
) -> ArrayObservation:
    """Coverage, gridding (fixed or fitted pixel scale) and the operator for an N×N image.

    ``obs`` is a preset name ('vla', 'eht', 'alma') or a config; ``layout`` overrides the
    packaged layout named by the config (for a user's own array).
    """
    cfg = observation_preset(obs) if isinstance(obs, str) else obs
    lay = layout if layout is not None else load_layout(cfg.layout)
    cov = uv_coverage(lay, cfg)
    if len(cov.uvw) == 0:
        raise ValueError(f"observation of {cfg.layout!r} has no unflagged sample (source never above the limit?)")
    scale = cfg.pixel_scale_arcsec or fit_pixel_scale(cov.uvw, N, cfg.fit_fraction)
    gridded = grid_counts(cov.uvw, N, scale)
    if gridded.n_on_grid == 0:
        raise ValueError(f"no uv sample of {cfg.layout!r} falls on a {N}x{N} grid at {scale:.4g} arcsec/pixel")
    op = FourierSamplingOperator(gridded.counts, weighting=weighting)
    return ArrayObservation(cfg, lay, cov, gridded, op)


def paper_mask(name: str) -> torch.Tensor:
    """The reference paper's 150×150 mask ('vla', 'eht', 'alma'), bool, centred (DC at (75, 75))."""
    if name not in PAPER_MASKS:
        raise ValueError(f"unknown paper mask {name!r}; known: {', '.join(sorted(PAPER_MASKS))}")
    raw = resources.files("ddrm.data.paper_masks").joinpath(PAPER_MASKS[name]).read_bytes()
    return torch.from_numpy(np.load(io.BytesIO(raw), allow_pickle=False).astype(bool))


def paper_operator(name: str) -> FourierSamplingOperator:
    """The paper's mask as an operator: unit weights (s = 1), Hermitian defect closed (warns)."""
    return FourierSamplingOperator(paper_mask(name), centred=True, weighting="uniform")


def mask_operator(mask: np.ndarray, *, centred: bool = True, weighting: Weighting = "natural") -> FourierSamplingOperator:
    """A user's boolean or count mask (N, N) as an operator (bool masks get unit weights)."""
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise ValueError(f"a uv mask must be 2-D, got shape {arr.shape}")
    if arr.dtype == bool:
        weighting = "uniform"
    return FourierSamplingOperator(torch.from_numpy(arr.astype(np.float64)), centred=centred, weighting=weighting)


def array_operator(spec: str, N: int) -> FourierSamplingOperator:
    """The operator of an array spec: an observation preset ('vla', 'eht', 'alma'; Earth-rotation
    coverage at N) or 'paper-<name>' (the reference paper's 150×150 mask; N must be 150)."""
    if spec.startswith("paper-"):
        op = paper_operator(spec.removeprefix("paper-"))
        if op.N != N:
            raise ValueError(f"the paper's masks are {op.N}x{op.N}; cannot observe {N}x{N} images with {spec!r}")
        return op
    return observe_array(spec, N).op

"""From "an array and an observation" to the Fourier operator DDRM uses, built once per array."""

from __future__ import annotations

import io
from dataclasses import dataclass
from importlib import resources
from typing import Optional, Union

import numpy as np
import torch

from ddrm.inverse.operators.fourier import FourierSamplingOperator, Weighting
from ddrm.radio.catalogue import array_spec, observation_preset
from ddrm.radio.coverage import ObservationConfig, UVCoverage, uv_coverage
from ddrm.radio.gridding import GriddedCoverage, cell_coordinates, fit_pixel_scale, grid_counts
from ddrm.radio.layouts import Layout, load_layout


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
    spec = array_spec(f"paper-{name}")
    raw = resources.files("ddrm.data.paper_masks").joinpath(spec.mask_file).read_bytes()
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


def array_operator(name: str, N: int) -> FourierSamplingOperator:
    """The operator of a catalogue array: Earth-rotation coverage at N, or a mask-only array's mask
    (its N only)."""
    spec = array_spec(name)
    if spec.mask_only:
        if spec.mask_N != N:
            raise ValueError(f"{name!r} is a {spec.mask_N}x{spec.mask_N} mask; cannot observe {N}x{N} images with it")
        return paper_operator(name.removeprefix("paper-"))
    return observe_array(name, N).op


def array_pixel_scale(name: str, N: int) -> Optional[float]:
    """The pixel scale (arcsec) of a catalogue array's N×N grid (fitted to its longest baseline unless
    the preset fixes it), or None for a mask-only array, which has none."""
    spec = array_spec(name)
    if spec.mask_only:
        return None
    return spec.observation.pixel_scale_arcsec or observe_array(name, N).pixel_scale_arcsec

"""Interferometry: array layouts, Earth-rotation uv-coverage, gridding, simulated observations."""

from .coverage import OBSERVATION_PRESETS, ObservationConfig, UVCoverage, observation_preset, uv_coverage
from .gridding import GriddedCoverage, cell_coordinates, fit_pixel_scale, grid_counts
from .layouts import Layout, known_layouts, load_layout, parse_layout_csv
from .observe import ArrayObservation, array_operator, mask_operator, observe_array, paper_mask, paper_operator
from .simulate import add_noise, exact_measurements, exact_visibilities, grid_visibilities, sigma_for_snr

__all__ = [
    "OBSERVATION_PRESETS", "ObservationConfig", "UVCoverage", "observation_preset", "uv_coverage",
    "GriddedCoverage", "cell_coordinates", "fit_pixel_scale", "grid_counts", "Layout", "known_layouts",
    "load_layout", "parse_layout_csv", "ArrayObservation", "array_operator", "mask_operator", "observe_array", "paper_mask",
    "paper_operator", "add_noise", "exact_measurements", "exact_visibilities", "grid_visibilities",
    "sigma_for_snr",
]

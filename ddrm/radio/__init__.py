"""Radio interferometry: array layouts, Earth-rotation uv-coverage, gridding, the NUFFT, simulated observations,
closures, gains and self-calibration, the likelihoods of visibilities and closures, and the imaging recipe."""

from ddrm.radio.catalogue import ARRAYS, OBSERVATION_PRESETS, ArraySpec, array_names, array_spec, observation_preset
from ddrm.radio.coverage import ObservationConfig, UVCoverage, uv_coverage
from ddrm.radio.gridding import GriddedCoverage, cell_coordinates, fit_pixel_scale, grid_counts, nearest_cells
from ddrm.radio.layouts import Layout, known_layouts, load_layout, parse_layout_csv
from ddrm.radio.observe import (ArrayObservation, array_operator, array_pixel_scale, mask_operator, observe_array,
                                paper_mask, paper_operator)
from ddrm.radio.simulate import add_noise, exact_measurements, exact_visibilities, grid_visibilities, sigma_for_snr

__all__ = [
    "ARRAYS", "ArraySpec", "array_names", "array_spec", "array_pixel_scale", "nearest_cells",
    "OBSERVATION_PRESETS", "ObservationConfig", "UVCoverage", "observation_preset", "uv_coverage",
    "GriddedCoverage", "cell_coordinates", "fit_pixel_scale", "grid_counts", "Layout", "known_layouts",
    "load_layout", "parse_layout_csv", "ArrayObservation", "array_operator", "mask_operator", "observe_array", "paper_mask",
    "paper_operator", "add_noise", "exact_measurements", "exact_visibilities", "grid_visibilities",
    "sigma_for_snr",
]

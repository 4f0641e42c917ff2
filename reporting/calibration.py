"""Conformal recalibration of a survey's posterior std: scales fitted on the validation-split
observations (``obs_split`` 1) for each (array, σ_y, K, sampler), stored with the survey as
``<report>/calibration.json``, applied to the test split, and reported apart from the raw numbers;
plus the reliability diagram (expected against observed source-pixel coverage, raw and recalibrated)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ddrm.inverse.calibration import RELIABILITY_LEVELS as LEVELS
from ddrm.inverse.calibration import covered, recalibrate, reliability, tarp_coverage
from reporting.plots import reliability_png
from stores import storage
from stores import survey as ss
from stores.dataset import Dataset
from stores.storage import StorageOptions


def _posterior(group, sampler: str, obs: np.ndarray, dataset: Dataset) -> tuple[torch.Tensor, ...]:
    """(mean, std, truth), each (n, N, N) float64, of observations ``obs``."""
    mean = torch.from_numpy(np.stack([group[f"{sampler}_mean"][int(i)] for i in obs]).astype(np.float64))
    std = torch.from_numpy(np.stack([group[f"{sampler}_std"][int(i)] for i in obs]).astype(np.float64))
    truth = torch.from_numpy(dataset.read(group["obs_image"][:][obs]).astype(np.float64))
    return mean, std, truth


def calibrate(survey: str, results: ss.SurveyResults, dataset: Dataset,
              storage_options: StorageOptions = None) -> list[dict[str, Any]]:
    """One row per (array, σ_y, K, sampler) that has finished validation and test observations: the fitted
    scales and the test split's source-pixel coverage, raw and recalibrated. Validation observations alone
    enter the fit."""
    meta = results.meta
    S = int(meta["config"]["samples"])
    group = storage.open_group(survey, "r", storage_options)
    rows = []
    for cell in results.cells():
        if len(cell.test) == 0 or S < 2:
            continue
        for sampler in meta["samplers"]:
            rows.append(_row(group, sampler, cell.val, cell.test, dataset, S) |
                        {"array": cell.array, "sigma_y": cell.sigma_y, "K": cell.K, "method": sampler.upper()})
    return rows


def _row(group, sampler: str, val: np.ndarray, test: np.ndarray, dataset: Dataset, S: int) -> dict[str, Any]:
    """Raw test coverage and curve; with validation observations, the scales and the recalibrated ones (else NaN)."""
    mean, std, truth = _posterior(group, sampler, test, dataset)
    tarp_dev = float("nan")
    if f"{sampler}_samples" in group and len(test) >= 2:  # TARP needs the samples (save_samples)
        samples = torch.from_numpy(np.stack([group[f"{sampler}_samples"][int(i)] for i in test]).astype(np.float64))
        tarp_dev = tarp_coverage(samples, truth)[2]
    raw = {"n_val": len(val), "n_test": len(test), "S": S, "tarp_max_dev": tarp_dev,
           "cov68_src": float(covered(mean, std, truth, 0.68, S).nanmean()),
           "cov95_src": float(covered(mean, std, truth, 0.95, S).nanmean()),
           "curve": reliability(mean, std, truth, S, LEVELS)}
    return raw | recalibrate(mean, std, truth, S, _posterior(group, sampler, val, dataset) if len(val) else None,
                             LEVELS)


def calibration_markdown(rows: list[dict[str, Any]]) -> str:
    head = "| array | σ_y | K | method | S | n val / test | scale68 | scale95 | cov68_src raw → recal. | " \
           "cov95_src raw → recal. | TARP max abs(ecp - α) |"
    lines = [head, "|---" * 11 + "|"]
    for r in rows:  # NaN (no validation observations) reads "nan": nothing recalibrated
        lines.append(f"| {r['array']} | {r['sigma_y']:g} | {r['K']} | {r['method']} | {r['S']} | {r['n_val']} / "
                     f"{r['n_test']} | {r['scale68']:.2f} | {r['scale95']:.2f} | {r['cov68_src']:.3f} → "
                     f"{r['cov68_src_cal']:.3f} | {r['cov95_src']:.3f} → {r['cov95_src_cal']:.3f} | {r['tarp_max_dev']:.3f} |")
    return "\n".join(lines)


def reliability_figure(rows: list[dict[str, Any]]) -> bytes:
    """Expected against observed source-pixel coverage, one curve per row, raw (solid) and recalibrated (dashed)."""
    curves = {f"{r['method']} {r['array']} σ={r['sigma_y']:g} K={r['K']}": (r["curve"], r["curve_cal"] or [])
              for r in rows}
    return reliability_png(list(LEVELS), curves)

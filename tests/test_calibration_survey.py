"""A small survey with DDRM and split Gibbs side by side, conformal scales fitted on validation
observations only, and the report's coverage table, reliability diagram and TARP column."""

import json

import numpy as np
import pytest
import torch

from configs import prepare_preset, reconstruct_preset
from ddrm import DDRMConfig, SplitGibbsConfig
from ddrm.inverse.calibration import conformal_scale, covered, scores
from flows.prepare import prepare_dataset
from flows.reconstruct import aggregate_metrics, reconstruct_survey
from reporting.calibration import calibrate
from stores import storage
from stores import survey as ss
from stores.dataset import Dataset
from tasks.report import table_for


def test_conformal_scale_of_exact_gaussian_scores_is_one_and_follows_the_std():
    g = torch.Generator().manual_seed(0)
    truth = torch.randn(64, 8, 8, generator=g, dtype=torch.float64) + 5  # all source pixels
    mean, std = torch.full_like(truth, 5.0), torch.ones_like(truth)
    S = 10_000  # k -> the normal quantile
    assert conformal_scale(scores(mean, std, truth), 0.68, S) == pytest.approx(1.0, abs=0.05)
    assert conformal_scale(scores(mean, 0.5 * std, truth), 0.68, S) == pytest.approx(2.0, abs=0.1)
    scale = conformal_scale(scores(mean, 0.5 * std, truth), 0.95, S)
    assert float(covered(mean, 0.5 * std, truth, 0.95, S, scale).mean()) >= 0.95
    with pytest.raises(ValueError, match="validation score"):
        conformal_scale(torch.zeros(0), 0.68, 8)


def test_survey_with_both_samplers_fits_scales_on_validation_only(ray_session, prefect_harness, tmp_path):
    data = prepare_dataset(prepare_preset("demo", name="cal-data", N=16, n_images=64, shard_size=64,
                                          chunk_images=8), root=str(tmp_path))
    cfg = reconstruct_preset("demo", name="cal", arrays=("vla",), K_values=(4,), n_images=3, n_calibration=3,
                             samples=4, sigma_y=(0.05,), save_samples=True,
                             samplers=(DDRMConfig(), SplitGibbsConfig(sweeps=2)))
    out = aggregate_metrics(reconstruct_survey("gaussian", data, cfg, root=str(tmp_path)))
    gibbs, ddrm = table_for(out["rows"], "vla", 4, "GIBBS"), table_for(out["rows"], "vla", 4, "DDRM")
    assert gibbs["n"] == ddrm["n"] == 3  # tables count test images only, not the 3 calibration images
    assert gibbs["nfe_mean"] == 8 and ddrm["nfe_mean"] == 4
    for row in (gibbs, ddrm):
        assert all(np.isfinite(row[f"{m}_mean"]) for m in ("psnr_mean", "cov68", "cov95", "cov68_src", "t_sampling"))
    cal = {r["method"]: r for r in out["calibration"]}
    assert set(cal) == {"DDRM", "GIBBS"} and all(r["n_val"] == r["n_test"] == 3 for r in cal.values())
    assert all(np.isfinite(r["scale68"]) and np.isfinite(r["tarp_max_dev"]) for r in cal.values())
    stored = json.loads(storage.read_bytes(storage.join(out["report"], "calibration.json")))
    assert stored[0]["scale68"] == cal[stored[0]["method"]]["scale68"]
    assert storage.read_bytes(storage.join(out["report"], "reliability.png"))[:4] == b"\x89PNG"

    # no leak: damaging every *test* observation's posterior leaves the scales as they were, and
    # damaging a validation observation moves them
    url = next(p for p in storage.filesystem(str(tmp_path))[0].glob(f"{tmp_path}/surveys/cal-*.zarr"))
    results = ss.load_results(url)
    dataset = Dataset(results["meta"]["dataset"])
    group = storage.open_group(url, "r+")
    before = {r["method"]: r["scale68"] for r in calibrate(url, results, dataset)}
    for i in np.flatnonzero(results["obs_split"] == 0):
        group["ddrm_std"][int(i)] = np.full(group["ddrm_std"].shape[1:], 1e3, dtype=np.float32)
    assert {r["method"]: r["scale68"] for r in calibrate(url, results, dataset)} == before
    for i in np.flatnonzero(results["obs_split"] == 1):
        group["ddrm_std"][int(i)] = np.full(group["ddrm_std"].shape[1:], 1e3, dtype=np.float32)
    assert {r["method"]: r["scale68"] for r in calibrate(url, results, dataset)}["DDRM"] != before["DDRM"]

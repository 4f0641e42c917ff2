"""The library's seams: reconstruction from a bare y, samplers behind one signature (a toy second
sampler in a real survey), seeds by array name, and honest FITS headers."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from astropy.io import fits

import ddrm.radio.catalogue as catalogue
from configs import prepare_preset, reconstruct_preset
from ddrm import DDRMConfig, make_generators, reconstruct
from ddrm.diffusion.schedule import Schedule
from ddrm.inverse.priors import GaussianFourierPrior
from ddrm.inverse.samplers import config_for, run_sampler, sampler_names
from ddrm.radio.baselines import CleanConfig, baselines
from ddrm.radio.pipeline import simulate, simulate_and_score
from flows.prepare import prepare_dataset
from flows.reconstruct import aggregate_metrics, reconstruct_survey
from stores.fits_io import fits_bytes
from tasks.report import table_for
from tests.toy_sampler import ToyConfig

SCHEDULE = Schedule()


def _setup(fourier_op, N=12, B=2):
    op = fourier_op(N, 0.4, seed=3)
    prior = GaussianFourierPrior.power_law(N, SCHEDULE, pixel_variance=0.05, mean=-0.8)
    truth = ((prior.sample(B, torch.Generator().manual_seed(1)) + 1) / 2).clamp(0, 1)
    return op, prior, truth


def test_reconstruction_needs_only_y_and_matches_the_survey_path(fourier_op):
    op, prior, truth = _setup(fourier_op)
    y = simulate(truth, op, 0.05, make_generators([7, 8]))
    denoiser = prior  # the Gaussian prior: its exact denoiser, carrying its schedule
    post = reconstruct(denoiser, y.float(), op, 0.05, DDRMConfig(), make_generators([1, 2]), K=10, S=3)
    assert post.samples.shape == (2, 3, 12, 12) and post.mean.shape == post.std.shape == (2, 12, 12)
    assert float(post.samples.min()) >= 0 and float(post.samples.max()) <= 1 and post.seconds > 0
    images = baselines(y, op, 0.05)  # baselines from y and H alone
    assert set(images) == {"dirty", "clean"} and images["clean"].shape == (2, 12, 12)
    full = simulate_and_score(denoiser, truth, op, sigma_y=0.05, samplers=[DDRMConfig()], K=10, S=3,
                              noise_generators=make_generators([7, 8]),
                              sample_generators={"ddrm": make_generators([1, 2])})
    torch.testing.assert_close(full.posteriors["ddrm"].samples, post.samples, rtol=0, atol=0)
    assert {"ddrm_psnr", "ddrm_psnr_mean", "dirty_psnr", "clean_psnr"} <= set(full.metrics)


def test_samplers_are_chosen_by_typed_config_and_share_one_checked_signature(fourier_op):
    op, prior, truth = _setup(fourier_op, B=1)
    y = simulate(truth, op, 0.0, make_generators([0])).float()
    assert {"ddrm", "toy"} <= set(sampler_names()) and config_for("ddrm", eta=0.5) == DDRMConfig(eta=0.5)
    with pytest.raises(ValueError, match="unknown sampler"):
        config_for("nope")
    with pytest.raises(ValueError, match="eta must lie in"):
        DDRMConfig(eta=1.5)
    for bad in ({"K": 0, "S": 1}, {"K": 1001, "S": 1}, {"K": 5, "S": 0}):
        with pytest.raises(ValueError):
            run_sampler(prior, y, op, 0.0, ToyConfig(), make_generators([0]), **bad)
    x = run_sampler(prior, y, op, 0.0, ToyConfig(), make_generators([0]), K=1, S=2)
    torch.testing.assert_close(op.ybar(op.H(x[0].double())), op.ybar(y.double()).expand(2, -1), rtol=0, atol=1e-5)


def test_appending_an_array_to_the_catalogue_keeps_existing_noise(fourier_op, monkeypatch):
    cfg = reconstruct_preset("demo", arrays=("vla", "eht"), n_images=3)
    test_images = np.arange(10, 20)
    before = {(a, i): cfg.noise_seed(i, a) for a in cfg.arrays for i in test_images[:3]}
    hypothetical = catalogue.ArraySpec("hypo", "a hypothetical array", catalogue.OBSERVATION_PRESETS["vla"])
    monkeypatch.setattr(catalogue, "ARRAYS", {"hypo": hypothetical, **catalogue.ARRAYS})
    wider = replace(cfg, arrays=("hypo", "vla", "eht"))
    obs_image, obs_array, _, _, _ = wider.plan(test_images)
    after = {(wider.arrays[a], int(i)): wider.noise_seed(int(i), wider.arrays[a])
             for i, a in zip(obs_image, obs_array)}
    assert all(after[k] == v for k, v in before.items())
    op, _, truth = _setup(fourier_op, B=1)
    y1 = simulate(truth, op, 0.1, make_generators([before[("vla", 10)]]))
    y2 = simulate(truth, op, 0.1, make_generators([after[("vla", 10)]]))
    torch.testing.assert_close(y1, y2, rtol=0, atol=0)


def test_a_mask_only_array_writes_a_header_that_says_so():
    header = fits.Header.fromstring(fits_bytes(np.zeros((150, 150)), ra_deg=None, dec_deg=None,
                                               pixel_scale_arcsec=None, bunit="x")[:2880 * 2].decode("ascii"))
    assert header["WCSNONE"] is True and "CDELT1" not in header and "CTYPE1" not in header


def test_a_second_sampler_adds_rows_without_touching_store_or_report(ray_session, prefect_harness, tmp_path):
    import ray.cloudpickle

    import tests.toy_sampler

    ray.cloudpickle.register_pickle_by_value(tests.toy_sampler)  # the toy exists in the tests only
    data = prepare_dataset(prepare_preset("demo", name="toy-data", N=16, n_images=40, shard_size=40,
                                          chunk_images=8), root=str(tmp_path))
    cfg = reconstruct_preset("demo", name="toy", arrays=("vla",), K_values=(4,), n_images=2, samples=2,
                             samplers=(DDRMConfig(), ToyConfig()), clean=CleanConfig(multiscale=True))
    out = aggregate_metrics(reconstruct_survey("gaussian", data, cfg, root=str(tmp_path)))
    assert {r["method"] for r in out["rows"]} == {"DDRM", "TOY", "dirty", "CLEAN", "MS-CLEAN"}  # multiscale: a baseline row
    toy, ddrm = table_for(out["rows"], "vla", 4, "TOY"), table_for(out["rows"], "vla", 4, "DDRM")
    assert toy["n"] == ddrm["n"] == 2 and np.isfinite(toy["psnr_mean"]) and toy["psnr_mean"] != ddrm["psnr_mean"]

"""Survey reconstruction: real Ray actors, real Prefect, real zarr (local and S3), FITS."""

import os
import re
from dataclasses import replace

import numpy as np
import pytest
import torch
from astropy.io import fits
from astropy.wcs import WCS

from configs import prepare_preset, reconstruct_preset
from ddrm.diffusion.schedule import Schedule
from ddrm.diffusion.unet import UNet, UNetConfig
from ddrm.inverse.priors import GaussianFourierPrior
from ddrm.radio import array_pixel_scale
from flows.prepare import prepare_dataset
from flows.reconstruct import aggregate_metrics, reconstruct_survey
from stores import storage
from stores import survey as ss
from stores.checkpoints import PriorMeta, write_checkpoint
from tasks.report import TABLE_METRICS, table_for
from tests.faults import faulty_reconstructor

DATA = prepare_preset("demo", name="recon-data", N=32, n_images=160, shard_size=64, chunk_images=16)
SURVEY = reconstruct_preset("demo", name="t", n_images=4, K_values=(5, 10), samples=4, batch_size=2)


@pytest.fixture(scope="module")
def dataset(prefect_harness, tmp_path_factory):
    return prepare_dataset(DATA, root=str(tmp_path_factory.mktemp("run")))


def test_small_survey_tables_and_ddrm_beats_the_dirty_image(ray_session, dataset, tmp_path):
    url = reconstruct_survey("gaussian", dataset, SURVEY, root=str(tmp_path))
    out = aggregate_metrics(url)
    rows = out["rows"]
    assert len(rows) == 3 * 2 * 3 and out["missing"] == 0
    assert {(r["array"], r["K"], r["method"]) for r in rows} == {
        (a, k, m) for a in ("vla", "eht", "alma") for k in (5, 10) for m in ("DDRM", "dirty", "CLEAN")}
    assert all(r["n"] == 4 for r in rows)
    assert set(rows[0]) >= {f"{m}_{s}" for m in TABLE_METRICS for s in ("mean", "std")}
    for array in ("vla", "eht", "alma"):
        ddrm, dirty = table_for(rows, array, 10, "DDRM"), table_for(rows, array, 10, "dirty")
        assert ddrm["psnr_mean"] > dirty["psnr_mean"], array
        assert np.isfinite(ddrm["sre_mean"]) and np.isnan(table_for(rows, array, 10, "CLEAN")["sre_mean"])
    report = out["report"]
    for name in ("metrics.csv", "table.md", "gallery.png", "psnr_vs_K.png"):
        assert os.path.getsize(os.path.join(report, name)) > 100, name
    header = open(os.path.join(report, "metrics.csv")).readline().strip().split(",")
    assert header[:5] == ["array", "sigma_y", "K", "method", "n"]


def _inject(monkeypatch, obs: int, marker, mode: str) -> None:
    import ray

    monkeypatch.setattr("tasks.reconstruct.RemoteReconstructor", ray.remote(max_restarts=2, max_task_retries=2)(
        faulty_reconstructor(obs, str(marker), mode)))


def test_resume_after_a_crash_computes_nothing_twice(ray_session, dataset, tmp_path, monkeypatch):
    from prefect import flow

    from tasks.reconstruct import plan_survey, run_actor_pool

    @flow
    def crashing() -> None:
        plan = plan_survey(SURVEY, "gaussian", dataset, str(tmp_path))
        run_actor_pool(plan, replace(SURVEY, num_actors=1), "gaussian", dataset)

    _inject(monkeypatch, 10, tmp_path / "fault", "raise")
    with pytest.raises(Exception, match="injected failure"):
        crashing()
    monkeypatch.undo()
    (url,) = [str(p) for p in (tmp_path / "surveys").glob("*.zarr")]
    first = ss.load_results(url)
    assert 0 < first["done"].sum() < len(first["done"]) and not first["done"][10]
    assert reconstruct_survey("gaussian", dataset, SURVEY, root=str(tmp_path)) == url
    second = ss.load_results(url)
    assert second["done"].all() and np.isfinite(second["metrics"][:, 0]).all()
    kept = first["done"]
    np.testing.assert_array_equal(second["finished_at"][kept], first["finished_at"][kept])  # not recomputed
    np.testing.assert_array_equal(second["metrics"][kept], first["metrics"][kept])
    assert len(second["metrics"]) == len(second["done"]) == 24  # every observation exactly once


def test_a_killed_actor_is_replaced_and_its_batch_retried(ray_session, dataset, tmp_path, monkeypatch):
    cfg = replace(SURVEY, arrays=("vla",), num_actors=1)
    from prefect import flow

    from tasks.reconstruct import plan_survey, run_actor_pool

    @flow
    def with_dying_actor() -> dict:
        plan = plan_survey(cfg, "gaussian", dataset, str(tmp_path))
        return run_actor_pool(plan, cfg, "gaussian", dataset)

    _inject(monkeypatch, 2, tmp_path / "fault", "exit")

    result = with_dying_actor()
    assert (tmp_path / "fault").exists() and result["done"] == 8
    (url,) = [str(p) for p in (tmp_path / "surveys").glob("*.zarr")]
    assert ss.load_results(url)["done"].all()


def test_same_seeds_give_the_same_metrics_with_one_or_two_actors(ray_session, dataset, tmp_path):
    cfg = replace(SURVEY, arrays=("alma",), K_values=(5,))
    one = ss.load_results(reconstruct_survey("gaussian", dataset, replace(cfg, num_actors=1), root=str(tmp_path / "a")))
    two = ss.load_results(reconstruct_survey("gaussian", dataset, replace(cfg, num_actors=2), root=str(tmp_path / "b")))
    timing = ss.columns(cfg).index("ddrm_t_sampling")
    np.testing.assert_array_equal(np.delete(one["metrics"], timing, 1), np.delete(two["metrics"], timing, 1))
    assert not np.isnan(one["metrics"]).any()


def test_a_trained_checkpoint_drives_the_actors_and_fits_carry_a_wcs(ray_session, dataset, tmp_path):
    unet = UNetConfig(base_channels=8, channel_mult=(1, 2), num_res_blocks=1, attention_levels=(), norm_groups=4)
    model = UNet(unet)
    checkpoint = str(tmp_path / "ckpt")
    write_checkpoint(checkpoint, {"model": model.state_dict(), "ema": model.state_dict(), "optimizer": {}, "step": 1},
                     PriorMeta(kind="ddpm", N=32, schedule=Schedule(), unet=unet))
    cfg = replace(SURVEY, arrays=("eht",), K_values=(3,), n_images=2)
    survey = reconstruct_survey(checkpoint, dataset, cfg, root=str(tmp_path))
    out = aggregate_metrics(survey, fits=True)
    path = os.path.join(out["report"], "fits", "eht_sigma0.02_K3_img" + f"{int(ss.load_results(survey)['obs_image'][0]):06d}"
                        + "_ddrm_mean.fits")
    with fits.open(path) as hdul:
        wcs = WCS(hdul[0].header)
        assert hdul[0].data.shape == (32, 32) and wcs.wcs.ctype[0] == "RA---SIN" and hdul[0].header["DDRM_K"] == 3
        # each array's own pixel scale (its uv pattern fitted to the 32-pixel grid), not a dataset constant
        assert hdul[0].header["CDELT2"] == pytest.approx(array_pixel_scale("eht", 32) / 3600, rel=1e-12)
    write_checkpoint(str(tmp_path / "c16"), {"model": model.state_dict(), "ema": model.state_dict(),
                                             "optimizer": {}, "step": 1},
                     PriorMeta(kind="ddpm", N=16, schedule=Schedule(), unet=unet))
    with pytest.raises(ValueError, match="trained on 16x16 images and is not size-independent"):
        reconstruct_survey(str(tmp_path / "c16"), dataset, cfg, root=str(tmp_path))


def test_gaussian_fit_recovers_a_known_spectrum():
    sch = Schedule()
    truth = GaussianFourierPrior.power_law(8, sch, pixel_variance=0.2, k0=2.0, mean=-0.5)
    draws = truth.sample(20000, torch.Generator().manual_seed(0))
    fitted = GaussianFourierPrior.fit(draws, sch)
    assert fitted.mean == pytest.approx(-0.5, abs=0.01)
    torch.testing.assert_close(fitted.lam, truth.lam, rtol=0.05, atol=1e-4)


def test_bad_survey_configs_raise():
    for kw in ({"K_values": (0,)}, {"arrays": ("lofar",)}, {"samples": 0}, {"arrays": ()}, {"sigma_y": (-1.0,)},
               {"sigma_y": 0.02}, {"sigma_y": (0.1, 0.1)}):
        with pytest.raises(ValueError):
            reconstruct_preset("demo", **kw)


def _tree(url: str) -> dict[str, float]:
    return {os.path.join(d, f): os.path.getmtime(os.path.join(d, f)) for d, _, fs in os.walk(url) for f in fs}


@pytest.mark.parametrize("damage", ["chunks", "array-metadata", "group-metadata"])
def test_a_damaged_store_is_named_and_its_observations_recomputed(ray_session, dataset, tmp_path, damage):
    """Chunks damaged (an image chunk deleted, the plan's chunk deleted, which would read as zeros: every
    observation VLA, image 0, and a metrics chunk that does not decode), a truncated array zarr.json, a
    truncated group zarr.json: the report refuses the store without writing in it, the next run stops with
    an error naming the store, and the run after it recomputes the affected observations (never zeros)."""
    from stores.integrity import StoreDamagedError

    cfg = replace(SURVEY, arrays=("vla",), K_values=(5,))
    url = reconstruct_survey("gaussian", dataset, cfg, root=str(tmp_path))
    first = ss.load_results(url)
    assert first["done"].all()
    if damage == "chunks":
        os.remove(os.path.join(url, "ddrm_mean", "c", "2", "0", "0"))
        os.remove(os.path.join(url, "obs_array", "c", "0"))  # the plan is rewritten from the config
        open(os.path.join(url, "metrics", "c", "1", "0"), "wb").write(b"\x28\xb5\x2f\xfd garbage")
        lost = [1, 2]
    elif damage == "array-metadata":
        meta_file = os.path.join(url, "ddrm_std", "zarr.json")
        open(meta_file, "w").write(open(meta_file).read()[:40])
        lost = list(range(len(first["done"])))
    else:
        meta_file = os.path.join(url, "zarr.json")
        open(meta_file, "w").write(open(meta_file).read()[:40])
        lost = []  # the attributes are rewritten from the config; every array is then checked
    if damage != "group-metadata":  # (unreadable attributes: the report says it is not a survey store)
        before = _tree(url)
        with pytest.raises(StoreDamagedError, match=re.escape(url)):
            aggregate_metrics(url + "/")  # a trailing slash: the report folder would land inside the store
        assert _tree(url) == before  # the report wrote nothing inside the store
    with pytest.raises(StoreDamagedError, match=re.escape(url)):
        reconstruct_survey("gaussian", dataset, cfg, root=str(tmp_path))
    middle = ss.load_results(url)
    assert not middle["done"][lost].any() and middle["done"].sum() == len(first["done"]) - len(lost)
    assert reconstruct_survey("gaussian", dataset, cfg, root=str(tmp_path)) == url  # repaired: it completes
    final = ss.load_results(url)
    assert final["done"].all()
    group = storage.open_group(url, "r")
    means = np.stack([group["ddrm_mean"][i] for i in range(len(final["done"]))])
    assert np.isfinite(means).all() and (means.reshape(len(means), -1).max(axis=1) > 0).all()
    kept = np.setdiff1d(np.arange(len(final["done"])), lost)
    np.testing.assert_array_equal(final["finished_at"][kept], first["finished_at"][kept])  # the rest not redone
    np.testing.assert_array_equal(final["obs_array"], first["obs_array"])  # the plan as it was
    np.testing.assert_array_equal(final["obs_image"], first["obs_image"])


def test_a_run_that_plans_while_another_creates_the_store_waits_for_it(dataset, tmp_path):
    """Two runs of one survey started together: while the first holds the store's lease and has not yet
    written the store's attributes (its zarr.json without them, its arrays there), the second's plan waits for
    the lease instead of taking the half-made store for a damaged one (which exited 2 on the cluster), then
    finds the store whole."""
    import json
    import threading
    import time

    from prefect import flow

    from stores.lease import acquire, release
    from tasks.reconstruct import plan_survey

    cfg = replace(SURVEY, arrays=("vla",))

    @flow
    def plan_only():
        return plan_survey(cfg, "gaussian", dataset, str(tmp_path))

    first = plan_only()
    meta = os.path.join(first.url, "zarr.json")
    whole = open(meta, "rb").read()
    lease = acquire(first.url, log=lambda _: None)  # the other run, mid-creation
    with open(meta, "w") as f:
        json.dump({"zarr_format": 3, "node_type": "group", "attributes": {}}, f)

    def finish() -> None:
        time.sleep(3)
        with open(meta, "wb") as f:
            f.write(whole)
        release(lease)

    other = threading.Thread(target=finish)
    t0 = time.monotonic()
    other.start()
    second = plan_only()
    other.join()
    assert time.monotonic() - t0 >= 3 and second == first and open(meta, "rb").read() == whole

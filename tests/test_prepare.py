"""Dataset preparation: real Prefect (test harness), real zarr, a real S3 server on 127.0.0.1."""

import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from astropy.io import fits

from configs import SHARED_FIRST, prepare_preset
from ddrm.diffusion.galaxies import synth_galaxies
from ddrm.seeding import derive_seed
from flows.prepare import prepare_dataset
from sources.ingest import Item, list_items, load_item
from stores import dataset as ds
from stores import storage

SMALL = prepare_preset("demo", N=32, n_images=96, shard_size=32, chunk_images=16, name="tiny")
FIRST = Path(__file__).resolve().parents[1] / SHARED_FIRST


def mtimes(path: str) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in Path(path).rglob("*") if p.is_file()}


def test_local_round_trip_data_splits_and_attributes(prefect_harness, tmp_path):
    url = prepare_dataset(SMALL, root=str(tmp_path))
    data = ds.Dataset(url)
    assert len(data) == 96 and data.N == 32 and data.images.dtype == np.float32
    # shard 1 is exactly what the generator gives for its seed: nothing reordered or rescaled
    shard1 = synth_galaxies(32, 32, SMALL.galaxy, torch.Generator().manual_seed(derive_seed(SMALL.seed, 1)))
    np.testing.assert_array_equal(data.read(np.arange(32, 64)), shard1.images.numpy())
    np.testing.assert_array_equal(data.labels(np.arange(32, 64)), shard1.labels.numpy())
    splits = {s: data.split(s) for s in ("train", "val", "test")}
    assert [len(v) for v in splits.values()] == [76, 10, 10]  # round(0.1 · 96) = 10
    assert np.array_equal(np.sort(np.concatenate(list(splits.values()))), np.arange(96))
    meta = data.meta
    assert meta["complete"] and meta["N"] == 32 and meta["pixel_scale_arcsec"] == 1.8
    assert meta["normalisation"]["mode"] == "max" and meta["provenance"]["source"] == "synthetic"
    assert meta["config"]["n_images"] == 96 and meta["package_version"]
    assert meta["config_hash"] in url and Path(url.removesuffix(".zarr") + ".preview.png").stat().st_size > 1000


def test_second_run_reuses_the_store_and_a_new_config_writes_another(prefect_harness, tmp_path):
    url = prepare_dataset(SMALL, root=str(tmp_path))
    before = mtimes(url)
    assert prepare_dataset(SMALL, root=str(tmp_path)) == url
    assert mtimes(url) == before  # not a byte rewritten
    other = prepare_dataset(replace(SMALL, seed=1), root=str(tmp_path))
    assert other != url and ds.Dataset(other).meta["config"]["seed"] == 1


def test_a_crash_leaves_nothing_valid_and_the_rerun_writes_only_what_is_missing(prefect_harness, tmp_path,
                                                                                 monkeypatch):
    real_write = ds.write_shard

    def crash_on_shard_2(url, shard, *args, **kwargs):
        if shard == 2:
            raise RuntimeError("simulated crash")
        return real_write(url, shard, *args, **kwargs)

    monkeypatch.setattr(ds, "write_shard", crash_on_shard_2)
    with pytest.raises(RuntimeError, match="simulated crash"):
        prepare_dataset(SMALL, root=str(tmp_path))
    final, partial = ds.store_urls(str(tmp_path), SMALL, ds.store_key(SMALL, None))
    assert not os.path.exists(final)
    with pytest.raises(ValueError, match="incomplete"):
        ds.Dataset(partial)
    assert ds.done_shards(partial) == {0, 1}
    shard0 = {k: v for k, v in mtimes(partial).items() if "/images/c/0/" in k}
    monkeypatch.setattr(ds, "write_shard", real_write)
    assert prepare_dataset(SMALL, root=str(tmp_path)) == final
    after = mtimes(final)
    assert all(after[k.replace(".partial", "")] == v for k, v in shard0.items())  # shard 0 not rewritten
    assert not os.path.exists(partial) and len(ds.Dataset(final)) == 96


def write_fits_folder(folder: Path) -> None:
    rng = np.random.default_rng(0)
    for i in range(4):
        img = np.zeros((40, 40))
        img[15 + i, 20] = 5.0 + i
        img -= 0.1 * rng.random((40, 40))  # negative noise, as in real radio maps
        fits.PrimaryHDU(img[None, None]).writeto(folder / f"good{i}.fits")  # (1, 1, H, W) like CASA
    nan = np.ones((40, 40))
    nan[3, 3] = np.nan
    fits.PrimaryHDU(nan).writeto(folder / "nan.fits")
    fits.PrimaryHDU(np.ones((3, 40, 40))).writeto(folder / "cube.fits")
    fits.PrimaryHDU(np.zeros((40, 40))).writeto(folder / "zero.fits")
    (folder / "corrupt.fits").write_bytes(b"SIMPLE  =                    T" + os.urandom(500))
    (folder / "notes.txt").write_text("ignored")


def test_fits_folder_bad_files_are_reported_by_name_and_skipped(prefect_harness, tmp_path):
    src = tmp_path / "cutouts"
    src.mkdir()
    write_fits_folder(src)
    cfg = prepare_preset("demo", name="fits", source=str(src), N=32, n_images=None, shard_size=2, chunk_images=2)
    url = prepare_dataset(cfg, root=str(tmp_path / "run"))
    data = ds.Dataset(url)
    assert len(data) == 4
    skipped = dict(data.meta["provenance"]["skipped"])
    assert set(skipped) == {"nan.fits", "cube.fits", "zero.fits", "corrupt.fits"}
    assert "NaN" in skipped["nan.fits"] and "2-D" in skipped["cube.fits"] and "zero" in skipped["zero.fits"]
    images = data.read(np.arange(4))
    assert images.min() == 0 and np.allclose(images.max(axis=(1, 2)), 1)  # negatives clipped, peak 1
    # crop 40 → 32 keeps the centre: source pixel (15 + i, 20) lands on (11 + i, 16)
    assert [np.unravel_index(im.argmax(), im.shape) for im in images] == [(11 + i, 16) for i in range(4)]


def test_fits_folder_in_strict_mode_fails_and_publishes_nothing(prefect_harness, tmp_path):
    src = tmp_path / "cutouts"
    src.mkdir()
    write_fits_folder(src)
    cfg = prepare_preset("demo", name="fits", source=str(src), N=32, n_images=None, strict=True)
    with pytest.raises(ValueError, match="strict mode.*(corrupt|nan|cube|zero).fits"):
        prepare_dataset(cfg, root=str(tmp_path / "run"))
    assert not list(tmp_path.rglob("*.zarr"))


def test_global_normalisation_uses_one_scale(prefect_harness, tmp_path):
    src = tmp_path / "stack.npy"
    stack = np.zeros((3, 16, 16), np.float32)
    stack[:, 8, 8] = [1.0, 2.0, 4.0]
    np.save(src, stack)
    cfg = prepare_preset("demo", name="npy", source=str(src), N=16, n_images=None, normalisation="global",
                         shard_size=64, chunk_images=64)
    data = ds.Dataset(prepare_dataset(cfg, root=str(tmp_path / "run")))
    np.testing.assert_allclose(data.read(np.arange(3))[:, 8, 8], [0.25, 0.5, 1.0])
    assert data.meta["normalisation"] == {"mode": "global", "scale": 4.0}


@pytest.mark.skipif(not FIRST.exists(), reason=f"real FIRST images not found at {FIRST}")
def test_ingest_of_real_first_images(prefect_harness, tmp_path):
    items, bad = list_items(str(FIRST))
    assert len(items) == 704 and not bad
    raw = np.load(FIRST)["images"]
    cfg = prepare_preset("mirabest", source=str(FIRST), n_images=40, shard_size=32, chunk_images=16)
    data = ds.Dataset(prepare_dataset(cfg, root=str(tmp_path)))
    usable = [i for i in range(len(raw)) if raw[i].max() > 0][:40]
    np.testing.assert_allclose(data.read(np.arange(40)), raw[usable] / raw[usable].max(axis=(1, 2), keepdims=True),
                               atol=1e-6)
    np.testing.assert_array_equal(data.labels(), np.load(FIRST)["labels"][usable])
    zero = next((i for i in range(len(raw)) if raw[i].max() == 0), None)
    if zero is not None:
        with pytest.raises(ValueError, match="zero"):
            load_item(Item(str(FIRST), zero), cfg)


def test_s3_store_written_by_the_flow_and_read_back(prefect_harness, s3_bucket):
    url = prepare_dataset(SMALL, root=f"{s3_bucket}/run")
    assert url.startswith(s3_bucket)
    data = ds.Dataset(url)
    assert len(data) == 96 and data.read([0, 95]).shape == (2, 32, 32)
    fs, path = storage.filesystem(url)
    assert not fs.exists(path + ".partial") and fs.exists(url.removesuffix(".zarr") + ".preview.png")
    assert prepare_dataset(SMALL, root=f"{s3_bucket}/run") == url  # reused on S3 too


def test_unreachable_endpoint_and_missing_bucket_fail_fast_with_a_clear_error(s3_server):
    from tests.conftest import free_port

    start = time.perf_counter()
    with pytest.raises(storage.StoreUnreachableError, match=r"cannot use the store at http://127\.0\.0\.1"):
        storage.check_reachable("s3://bucket/x", {"endpoint_url": f"http://127.0.0.1:{free_port()}"})
    assert time.perf_counter() - start < 10
    with pytest.raises(storage.StoreUnreachableError, match="does not exist"):
        storage.check_reachable("s3://no-such-bucket/x")


def test_unknown_preset_and_bad_config_raise():
    with pytest.raises(ValueError, match="unknown prepare preset"):
        prepare_preset("nope")
    with pytest.raises(ValueError, match="multiple of chunk_images"):
        prepare_preset("demo", shard_size=100, chunk_images=64)
    with pytest.raises(ValueError):
        prepare_preset("demo", bogus=1)

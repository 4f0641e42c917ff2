"""The real sky: FIRST galaxies from the firstgalaxydata package, and the packaged FIRST prior."""

import os

import numpy as np
import pytest
import torch

from configs import prepare_preset
from ddrm import DDRMConfig, make_generators, reconstruct
from ddrm.diffusion.images import centre_crop_or_pad
from ddrm.inverse.metrics import psnr_from_mse
from ddrm.radio import array_operator
from ddrm.radio.baselines import baselines
from ddrm.radio.pipeline import simulate
from stores import packaged
from stores.checkpoints import load_prior, read_meta
from tests.conftest import TORCH_THREADS

try:
    from sources.first_package import data_file, read

    FIRST = data_file()
except ImportError as err:  # the optional extra is not installed
    FIRST, REASON = None, str(err)

needs_first = pytest.mark.skipif(FIRST is None, reason="firstgalaxydata is not installed "
                                 "(pip install --no-deps firstgalaxydata==0.2.1 h5py)")


def _test_images(n: int, N: int) -> torch.Tensor:
    g = read(FIRST)
    idx = np.flatnonzero(g.split == "test")[:n]
    return torch.stack([centre_crop_or_pad(torch.from_numpy(g.images[i].astype(np.float32)) / 255.0, N)
                        for i in idx])


@needs_first
def test_prepare_first_keeps_the_package_split_and_crop(prefect_harness, tmp_path):
    from flows.prepare import prepare_dataset
    from stores.dataset import Dataset

    url = prepare_dataset(prepare_preset("first", n_images=60, shard_size=32, chunk_images=16), root=str(tmp_path))
    data, g = Dataset(url), read(FIRST)
    assert data.N == 150 and len(data) == 60 and data.meta["normalisation"]["scale"] == 255.0
    for store_name in ("train", "val", "test"):
        np.testing.assert_array_equal(data.split(store_name), np.flatnonzero(g.split[:60] == store_name))
    np.testing.assert_array_equal(data.read([5])[0], g.images[5][75:225, 75:225] / np.float32(255))
    assert data.meta["provenance"]["source"] == "firstgalaxydata" and "non-commercial" in data.meta["provenance"]["licence"]
    np.testing.assert_array_equal(data.labels(), g.labels[:60])


@needs_first
def test_split_crops_are_the_centre_of_that_split_with_empty_crops_skipped():
    from sources.first_package import split_crops

    g = read(FIRST)
    idx, crops = split_crops(g, "val")
    every = np.flatnonzero(g.split == "val")
    empty = [i for i in every if not g.images[i][75:225, 75:225].any()]
    np.testing.assert_array_equal(idx, [i for i in every if i not in empty])
    assert crops.dtype == np.uint8 and crops.shape == (len(idx), 150, 150)
    np.testing.assert_array_equal(crops, g.images[idx][:, 75:225, 75:225])


def test_packaged_prior_is_intact_and_loads_offline():
    for name in packaged.PACKAGED_PRIORS:
        path = packaged.packaged_path(name)
        assert path and os.path.getsize(os.path.join(path, "model.pt")) < 10 * 2**20
        packaged.verify(path)  # the checksum guards the file
        meta = read_meta(name)
        assert meta.any_size and meta.kind == "ddpm" and 0 < meta.step <= meta.steps
        prior = load_prior(name, torch.device("cpu"))
        assert next(prior.model.parameters()).dtype == torch.float32


def test_a_corrupted_packaged_prior_is_refused(tmp_path, monkeypatch):
    src = packaged.packaged_path("first")
    for f in os.listdir(src):
        data = open(os.path.join(src, f), "rb").read()
        open(tmp_path / f, "wb").write(data[:-1] + bytes([data[-1] ^ 1]) if f == "model.pt" else data)
    monkeypatch.setattr(packaged, "packaged_path", lambda name: str(tmp_path) if name == "broken" else None)
    with pytest.raises(ValueError, match="checksum"):
        load_prior("broken", torch.device("cpu"))


def _ddrm(truth: torch.Tensor, array: str, K: int, S: int, sigma_y: float = 0.0):
    prior = load_prior("first", torch.device("cpu"))
    op = array_operator(array, truth.shape[-1])
    y = simulate(truth, op, sigma_y, make_generators(range(len(truth))))
    post = reconstruct(prior, y.float(), op, sigma_y, DDRMConfig(), make_generators(range(10, 10 + len(truth))),
                       K=K, S=S)
    return post, baselines(y, op, sigma_y)


@needs_first
@pytest.mark.filterwarnings("ignore:uv mask was not closed")
def test_packaged_prior_beats_the_dirty_image_on_real_test_images():
    torch.set_num_threads(TORCH_THREADS)
    truth = _test_images(2, 150)
    post, base = _ddrm(truth, "paper-vla", K=10, S=2)
    ddrm = psnr_from_mse(((post.mean - truth) ** 2).mean(dim=(1, 2)))
    dirty = psnr_from_mse(((base["dirty"].float() - truth) ** 2).mean(dim=(1, 2)))
    assert bool((ddrm > dirty + 3).all()), (ddrm, dirty)


@needs_first
@pytest.mark.parametrize("N", [96, 192])
def test_any_image_size_keeps_the_empty_sky_empty(N):
    torch.set_num_threads(TORCH_THREADS)
    truth = _test_images(2, N)
    post, _ = _ddrm(truth, "vla", K=10, S=2, sigma_y=0.0)
    background = post.mean[truth == 0]
    assert abs(float(background.mean())) < 0.01, float(background.mean())

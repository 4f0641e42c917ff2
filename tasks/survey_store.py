"""The survey results store: one zarr v3 group per survey, written observation by observation.

Layout of ``<root>/surveys/<name>-<key>.zarr`` (key = hash of config, dataset and checkpoint):

    obs_image, obs_array, obs_K    (n_obs,) the plan: dataset index, index into ``arrays``, K
    mean, std, dirty, clean        (n_obs, N, N) float32, one chunk per observation, image space
    samples                        (n_obs, S, N, N) float32 (only with save_samples)
    metrics                        (n_obs, len(columns)) float64, one chunk per observation
    finished_at                    (n_obs,) float64 UNIX time the observation was written
    done                           (n_obs,) bool, set last: what a rerun skips
    attrs["radio_ddrm"]            config, dataset, checkpoint, arrays, K values, columns, N

Observation i is (array, K, image) in the order arrays × K values × images; its id is
``<array>/K<K>/img<image>``. Every chunk belongs to one observation, so actors write in parallel.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

import ddrm

from . import storage
from .config import ARRAY_SPECS, ReconstructConfig, stable_hash
from .storage import StorageOptions

FORMAT = "radio-ddrm/survey@1"
ATTR = "radio_ddrm"
COLUMNS = ("mse", "mse_mean", "psnr", "snr", "sre", "cov68", "cov95", "t_sampling", "sigma_y", "S",
           "dirty_mse", "dirty_psnr", "dirty_snr", "clean_mse", "clean_psnr", "clean_snr")
IMAGES = ("mean", "std", "dirty", "clean")


@dataclass(frozen=True)
class Batch:
    """Observations ``obs`` (indices) sharing one array and K, of dataset images ``images``."""

    array: str
    K: int
    obs: tuple[int, ...]
    images: tuple[int, ...]


def obs_id(array: str, K: int, image: int) -> str:
    return f"{array}/K{K}/img{image:06d}"


def plan(config: ReconstructConfig, test_images: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(obs_image, obs_array, obs_K) for arrays × K values × the first n_images test images."""
    images = np.asarray(test_images[:config.n_images], dtype=np.int64)
    if len(images) < config.n_images:
        raise ValueError(f"the dataset's test split has {len(images)} images; the survey asks for {config.n_images}")
    grid = [(a, k, img) for a in range(len(config.arrays)) for k in config.K_values for img in images]
    obs_array, obs_K, obs_image = (np.array(v) for v in zip(*grid))
    return obs_image.astype(np.int64), obs_array.astype(np.int16), obs_K.astype(np.int32)


def observation_seeds(seed: int, image: int, array: str, K: int) -> tuple[int, int]:
    """(noise seed, sampler seed): the noise depends on (image, array) only, so every K sees the same y."""
    a = ARRAY_SPECS.index(array)
    noise = np.random.SeedSequence([seed, image, a]).generate_state(1, np.uint64)[0] >> 1
    sampler = np.random.SeedSequence([seed, image, a, K]).generate_state(1, np.uint64)[0] >> 1
    return int(noise), int(sampler)


def survey_key(config: ReconstructConfig, dataset_hash: str, checkpoint_meta: dict) -> str:
    return stable_hash({"config": config.content_key(), "dataset": dataset_hash, "format": FORMAT,
                        "prior": {k: checkpoint_meta.get(k) for k in ("prior", "unet", "schedule", "train", "step",
                                                                      "dataset_hash")}})


def create(url: str, config: ReconstructConfig, N: int, test_images: np.ndarray, meta: dict[str, Any],
           storage_options: StorageOptions = None) -> int:
    """Create the store unless it exists for this key; returns the number of observations."""
    existing = read_meta(url, storage_options)
    if existing and existing.get("key") == meta["key"]:
        return int(existing["n_obs"])
    if existing:
        raise ValueError(f"{url} holds another survey (key {existing.get('key')}, wanted {meta['key']})")
    obs_image, obs_array, obs_K = plan(config, test_images)
    n = len(obs_image)
    group = storage.open_group(url, "w", storage_options)
    for name, values in (("obs_image", obs_image), ("obs_array", obs_array), ("obs_K", obs_K)):
        group.create_array(name, shape=(n,), chunks=(n,), dtype=values.dtype)[:] = values
    for name in IMAGES:
        group.create_array(name, shape=(n, N, N), chunks=(1, N, N), dtype="float32", fill_value=np.nan)
    if config.save_samples:
        S = config.samples
        group.create_array("samples", shape=(n, S, N, N), chunks=(1, S, N, N), dtype="float32", fill_value=np.nan)
    group.create_array("metrics", shape=(n, len(COLUMNS)), chunks=(1, len(COLUMNS)), dtype="float64",
                       fill_value=np.nan)
    group.create_array("finished_at", shape=(n,), chunks=(1,), dtype="float64", fill_value=np.nan)
    group.create_array("done", shape=(n,), chunks=(1,), dtype="bool", fill_value=False)
    group.attrs[ATTR] = {**meta, "format": FORMAT, "n_obs": n, "N": N, "columns": list(COLUMNS),
                         "arrays": list(config.arrays), "K_values": list(config.K_values),
                         "config": config.to_dict(), "package_version": ddrm.__version__}
    return n


def read_meta(url: str, storage_options: StorageOptions = None) -> Optional[dict]:
    try:
        return dict(storage.open_group(url, "r", storage_options).attrs.get(ATTR) or {}) or None
    except (FileNotFoundError, KeyError, ValueError):
        return None


def pending_batches(url: str, batch_size: int, storage_options: StorageOptions = None) -> list[Batch]:
    """Unfinished observations in batches of up to batch_size with one (array, K) each, in plan order."""
    group = storage.open_group(url, "r", storage_options)
    meta = dict(group.attrs[ATTR])
    done = group["done"][:]
    obs_image, obs_array, obs_K = group["obs_image"][:], group["obs_array"][:], group["obs_K"][:]
    batches, current = [], []

    def flush() -> None:
        if current:
            batches.append(Batch(meta["arrays"][obs_array[current[0]]], int(obs_K[current[0]]), tuple(current),
                                 tuple(int(obs_image[i]) for i in current)))
            current.clear()

    for i in np.flatnonzero(~done):
        if current and (obs_array[i], obs_K[i]) != (obs_array[current[0]], obs_K[current[0]]) or \
                len(current) == batch_size:
            flush()
        current.append(int(i))
    flush()
    return batches


def write_observation(url: str, i: int, images: dict[str, np.ndarray], row: dict[str, float],
                      samples: Optional[np.ndarray] = None, storage_options: StorageOptions = None) -> None:
    """Write observation i's images, metrics row and time, then mark it done (last)."""
    group = storage.open_group(url, "r+", storage_options)
    for name in IMAGES:
        group[name][i] = images[name]
    if samples is not None and "samples" in group:
        group["samples"][i] = samples
    group["metrics"][i] = np.array([row.get(c, np.nan) for c in COLUMNS], dtype=np.float64)
    group["finished_at"][i] = time.time()
    group["done"][i] = True


def load_results(url: str, storage_options: StorageOptions = None) -> dict[str, Any]:
    """Plan, metrics (n_obs, columns), done flags, finishing times and the store's metadata."""
    group = storage.open_group(url, "r", storage_options)
    return {"meta": dict(group.attrs[ATTR]), "obs_image": group["obs_image"][:], "obs_array": group["obs_array"][:],
            "obs_K": group["obs_K"][:], "metrics": group["metrics"][:], "done": group["done"][:],
            "finished_at": group["finished_at"][:]}

"""The survey results store: one zarr v3 group per survey, written observation by observation.

Layout of ``<root>/surveys/<name>-<key>.zarr`` (key = hash of config, dataset and checkpoint):

    obs_image, obs_array, obs_sigma, obs_K   (n_obs,) the plan: dataset index, index into ``arrays``,
                                   index into ``sigma_y`` (the noise levels), K
    obs_split                      (n_obs,) int8: 0 test image (the tables), 1 validation image (only for
                                   the conformal fit, ``n_calibration``)
    <sampler>_mean, <sampler>_std  (n_obs, N, N) float32 per sampler that runs, one chunk per observation,
    dirty, clean                   image space (``image_names``)
    <sampler>_samples              (n_obs, S, N, N) float32 (only with save_samples)
    metrics                        (n_obs, len(columns)) float64, one chunk per observation; columns
                                   ``<method>_<metric>`` for the samplers that run and the baselines
                                   (``ddrm.radio.pipeline.metric_columns``), then ``sigma_y`` and ``S``
    finished_at                    (n_obs,) float64 UNIX time the observation was written
    done                           (n_obs,) bool, set last: what a rerun skips
    attrs["radio_ddrm"]            config, dataset, checkpoint, arrays, noise levels, K values, samplers,
                                   baselines, images, columns, N

Observation i is (array, σ_y, K, image) in the order arrays × noise levels × K values × images; its
id is ``<array>/sigma<σ_y>/K<K>/img<image>``. Every noise level and K sees the same noise draw z. Every chunk belongs to one observation, so actors write in parallel.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

import ddrm
from configs import ReconstructConfig, stable_hash
from ddrm.radio.baselines import BASELINES, baseline_names
from ddrm.radio.pipeline import metric_columns
from stores import storage
from stores.checkpoints import PriorMeta
from stores.integrity import PLAN_FILL, StoreDamagedError
from stores.storage import StorageOptions

FORMAT = "radio-ddrm/survey@1"
ATTR = storage.ATTR
EXTRA_COLUMNS = ("sigma_y", "S")


def columns(config: ReconstructConfig) -> tuple[str, ...]:
    """The metrics columns of a survey: what its samplers and the baselines produce."""
    return metric_columns(config.sampler_names, baseline_names(config.clean)) + EXTRA_COLUMNS


def image_names(sampler_names, baselines: tuple[str, ...] = BASELINES) -> tuple[str, ...]:
    """Per-observation images: each sampler's ``<name>_mean`` and ``<name>_std``, then the baselines."""
    return tuple(f"{n}_{k}" for n in sampler_names for k in ("mean", "std")) + baselines


@dataclass(frozen=True)
class Batch:
    """Observations ``obs`` (indices) sharing one array, noise level and K, of dataset images ``images``."""

    array: str
    sigma_y: float
    K: int
    obs: tuple[int, ...]
    images: tuple[int, ...]


def survey_key(config: ReconstructConfig, dataset_hash: str, prior: PriorMeta) -> str:
    """Hash of what determines the results; ``config.content_key()`` carries the key version."""
    return stable_hash({"config": config.content_key(), "dataset": dataset_hash, "format": FORMAT,
                        "prior": prior.identity()})


def create(url: str, config: ReconstructConfig, N: int, test_images: np.ndarray, meta: dict[str, Any],
           storage_options: StorageOptions = None, val_images: np.ndarray = np.zeros(0, dtype=np.int64)) -> int:
    """Create the store unless it exists for this key; returns the number of observations."""
    existing = read_meta(url, storage_options)
    if existing and existing.get("key") == meta["key"]:
        return int(existing["n_obs"])
    if existing:
        raise ValueError(f"{url} holds another survey (key {existing.get('key')}, wanted {meta['key']})")
    obs_image, obs_array, obs_sigma, obs_K, obs_split = config.plan(test_images, val_images)
    n = len(obs_image)
    images, cols = image_names(config.sampler_names, baseline_names(config.clean)), columns(config)
    attrs = {**meta, "format": FORMAT, "n_obs": n, "N": N, "columns": list(cols),
             "samplers": list(config.sampler_names), "baselines": list(baseline_names(config.clean)), "images": list(images),
             "arrays": list(config.arrays), "sigma_y": list(config.sigma_y), "K_values": list(config.K_values),
             "config": config.to_dict(), "package_version": ddrm.__version__}
    if storage.exists(storage.join(url, "done"), storage_options):  # arrays there, group metadata unreadable
        storage.write_bytes(storage.join(url, "zarr.json"), json.dumps(
            {"zarr_format": 3, "node_type": "group", "attributes": {ATTR: attrs}}).encode(), storage_options)
        raise StoreDamagedError(f"survey store {url} is damaged: its zarr.json was unreadable (rewritten from the "
                                f"survey's config); rerun to check its observations and recompute what was lost")
    # "a" with each array overwritten, not "w": the store's folder already holds the creating run's lease
    group = storage.open_group(url, "a", storage_options)

    def array(name: str, shape: tuple, chunks: tuple, dtype, fill_value):
        return group.create_array(name, shape=shape, chunks=chunks, dtype=dtype, fill_value=fill_value, overwrite=True)

    for name, values in (("obs_image", obs_image), ("obs_array", obs_array), ("obs_sigma", obs_sigma), ("obs_K", obs_K),
                         ("obs_split", obs_split)):
        array(name, (n,), (n,), values.dtype, PLAN_FILL)[:] = values
    for name in images:
        array(name, (n, N, N), (1, N, N), "float32", np.nan)
    if config.save_samples:
        S = config.samples
        for sampler in config.sampler_names:
            array(f"{sampler}_samples", (n, S, N, N), (1, S, N, N), "float32", np.nan)
    array("metrics", (n, len(cols)), (1, len(cols)), "float64", np.nan)
    array("finished_at", (n,), (1,), "float64", np.nan)
    array("done", (n,), (1,), "bool", False)
    group.attrs[ATTR] = attrs
    return n


read_meta = storage.read_attrs


def pending_batches(url: str, batch_size: int, storage_options: StorageOptions = None) -> list[Batch]:
    """Unfinished observations in batches of up to batch_size with one (array, σ_y, K) each, in plan order."""
    group = storage.open_group(url, "r", storage_options)
    meta = dict(group.attrs[ATTR])
    done = group["done"][:]
    obs_image, obs_K = group["obs_image"][:], group["obs_K"][:]
    obs_array, obs_sigma = group["obs_array"][:], group["obs_sigma"][:]
    batches, current = [], []

    def key(i: int) -> tuple:
        return int(obs_array[i]), int(obs_sigma[i]), int(obs_K[i])

    def flush() -> None:
        if current:
            a, s, K = key(current[0])
            batches.append(Batch(meta["arrays"][a], float(meta["sigma_y"][s]), K, tuple(current),
                                 tuple(int(obs_image[i]) for i in current)))
            current.clear()

    for i in np.flatnonzero(~done):
        if current and key(i) != key(current[0]) or len(current) == batch_size:
            flush()
        current.append(int(i))
    flush()
    return batches


def unfinished(url: str, batch: Batch, storage_options: StorageOptions = None) -> Optional[Batch]:
    """The part of ``batch`` whose observations are not done (None if all are): what to redo after a death."""
    done = storage.open_group(url, "r", storage_options)["done"][:]
    keep = [k for k, i in enumerate(batch.obs) if not done[i]]
    if not keep:
        return None
    return Batch(batch.array, batch.sigma_y, batch.K, tuple(batch.obs[k] for k in keep),
                 tuple(batch.images[k] for k in keep))


class ObservationWriter:
    """Writes observations into one survey store. The group and its arrays are opened once (their
    metadata is fixed when the store is created), so an observation costs one chunk write per array and
    no metadata reads: on S3, 7 PUTs instead of about 16 requests."""

    def __init__(self, url: str, storage_options: StorageOptions = None) -> None:
        group = storage.open_group(url, "r+", storage_options)
        meta = dict(group.attrs[ATTR])
        self.url, self.images, self.columns = url, tuple(meta["images"]), tuple(meta["columns"])
        self.arrays = {name: group[name] for name in (*self.images, "metrics", "finished_at", "done")}
        self.samples = {name: group[name] for name in group.array_keys() if name.endswith("_samples")}

    def write(self, i: int, images: dict[str, np.ndarray], row: dict[str, float],
              samples: Optional[dict[str, np.ndarray]] = None) -> None:
        """Observation i's images (all of the store's ``images``), optional samples by sampler, metrics row
        and time, then its ``done`` flag (last)."""
        missing = set(self.images) - set(images)
        if missing:
            raise ValueError(f"{self.url}: observation {i} lacks images {sorted(missing)}")
        for name in self.images:
            self.arrays[name][i] = images[name]
        for sampler, values in (samples or {}).items():
            if f"{sampler}_samples" in self.samples:
                self.samples[f"{sampler}_samples"][i] = values
        self.arrays["metrics"][i] = np.array([row.get(c, np.nan) for c in self.columns], dtype=np.float64)
        self.arrays["finished_at"][i] = time.time()
        self.arrays["done"][i] = True


@dataclass(frozen=True)
class Cell:
    """One table cell of a survey: array (name and index), noise level (value and index), K, and the finished
    observations of it, test split and validation split (indices into the store)."""

    array: str
    a: int
    sigma_y: float
    s: int
    K: int
    test: np.ndarray
    val: np.ndarray


@dataclass(frozen=True, eq=False)
class SurveyResults:
    """A survey store's plan (n_obs,) per field, metrics (n_obs, columns), done flags, finishing times and
    metadata (its ``meta["columns"]`` name the metrics' columns)."""

    meta: dict
    obs_image: np.ndarray
    obs_array: np.ndarray
    obs_sigma: np.ndarray
    obs_K: np.ndarray
    obs_split: np.ndarray
    metrics: np.ndarray
    done: np.ndarray
    finished_at: np.ndarray

    def cells(self):
        """Every (array, σ_y, K) of the plan, in the plan's order, with its finished test and validation
        observations: ``Cell``s."""
        for a, array in enumerate(self.meta["arrays"]):
            for s, sigma in enumerate(self.meta["sigma_y"]):
                for K in self.meta["K_values"]:
                    here = self.done & (self.obs_array == a) & (self.obs_sigma == s) & (self.obs_K == K)
                    yield Cell(array, a, float(sigma), s, int(K), np.flatnonzero(here & (self.obs_split == 0)),
                               np.flatnonzero(here & (self.obs_split == 1)))

    def __getitem__(self, field: str):
        """``results["done"]``: the field by name, as scripts that treat the results as a record read them."""
        if field not in self.__dataclass_fields__:
            raise KeyError(field)
        return getattr(self, field)

    def column(self, name: str) -> int:
        """The metrics column of ``name`` (e.g. ``ddrm_psnr``); KeyError naming the columns there are."""
        try:
            return list(self.meta["columns"]).index(name)
        except ValueError:
            raise KeyError(f"no metric column {name!r}; the store has {list(self.meta['columns'])}") from None


def load_results(url: str, storage_options: StorageOptions = None) -> SurveyResults:
    """The store's plan, metrics, done flags, finishing times and metadata (``SurveyResults``)."""
    group = storage.open_group(url, "r", storage_options)
    return SurveyResults(dict(group.attrs[ATTR]), group["obs_image"][:], group["obs_array"][:], group["obs_sigma"][:],
                         group["obs_K"][:], group["obs_split"][:], group["metrics"][:], group["done"][:],
                         group["finished_at"][:])

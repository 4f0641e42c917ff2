"""The dataset store: a zarr v3 group, written under a temporary name and published atomically.

Layout of ``<root>/data/<name>-<key>.zarr`` (key = hash of the config and the source files):

    images       (n, N, N) float32 in [0, 1], chunks (chunk_images, N, N); unwritten = NaN
    labels       (n,) int16: morphology index (synthetic), the source's label, or -1
    splits/train, splits/val, splits/test   sorted int64 indices partitioning range(n): the source's own
                                            split (firstgalaxydata's) or a seeded one
    shard_done   (n_shards,) bool, one chunk per shard: what a rerun can skip
    attrs["radio_ddrm"]   provenance, normalisation, pixel scale, N, n, version, config and its
                          hash, and ``complete`` (true only once published)

Writing happens in ``<store>.partial``; publishing renames it to ``<store>`` and only then
sets ``complete``, so a crash at any point leaves nothing that reads as a valid dataset.
"""

from __future__ import annotations

import datetime
from typing import Any, Optional

import numpy as np

import ddrm

from stores import runs, storage
from configs import SPLITS, PrepareConfig, stable_hash
from stores.storage import StorageOptions

FORMAT = "radio-ddrm/dataset@1"
ATTR = storage.ATTR


def store_key(config: PrepareConfig, files_hash: Optional[str]) -> str:
    return stable_hash({"config": config.content_key(), "files": files_hash, "format": FORMAT})


def store_urls(root: str, config: PrepareConfig, key: str) -> tuple[str, str]:
    """(final, partial) URLs of the store for this config under the run root."""
    final = runs.dataset_url(root, config.name, key)
    return final, final + ".partial"


def split_indices(n: int, fractions: tuple[float, float, float], seed: int) -> dict[str, np.ndarray]:
    """Seeded partition of range(n): round(f·n) images to val and test, the rest to train; sorted."""
    perm = np.random.default_rng([seed, n]).permutation(n)
    n_val, n_test = round(fractions[1] * n), round(fractions[2] * n)
    cuts = {"val": perm[:n_val], "test": perm[n_val:n_val + n_test], "train": perm[n_val + n_test:]}
    return {name: np.sort(cuts[name]).astype(np.int64) for name in SPLITS}


read_meta = storage.read_attrs


def is_complete(url: str, key: str, storage_options: StorageOptions = None) -> bool:
    meta = read_meta(url, storage_options)
    return bool(meta and meta.get("complete") and meta.get("config_hash") == key)


def create_partial(url: str, *, n: int, config: PrepareConfig, meta: dict[str, Any],
                   storage_options: StorageOptions = None) -> int:
    """Create (or keep, to resume) the partial store; returns the number of shards already written."""
    existing = read_meta(url, storage_options)
    if existing and existing.get("config_hash") == meta["config_hash"] and existing.get("n") == n:
        return len(done_shards(url, storage_options))
    storage.remove(url, storage_options)
    provenance = dict(meta.get("provenance") or {})
    given = provenance.pop("splits", None)  # a source's own split goes into splits/, not the attributes
    meta = {**meta, "provenance": {**provenance, "split": provenance.get("split", "seeded")}}
    N, n_shards = config.N, -(-n // config.shard_size)
    attrs = {**meta, "format": FORMAT, "n": n, "N": N, "n_shards": n_shards, "complete": False,
             "package_version": ddrm.__version__, "config": config.to_dict(),
             "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    group = storage.open_group(url, "w", storage_options)
    group.attrs[ATTR] = attrs
    group.create_array("images", shape=(n, N, N), chunks=(config.chunk_images, N, N), dtype="float32",
                       fill_value=np.nan)
    group.create_array("labels", shape=(n,), chunks=(config.chunk_images,), dtype="int16", fill_value=-1)
    group.create_array("shard_done", shape=(n_shards,), chunks=(1,), dtype="bool", fill_value=False)
    splits = group.create_group("splits")
    chosen = {k: np.asarray(v, np.int64) for k, v in given.items()} if given else \
        split_indices(n, config.split_fractions, config.seed)
    for name, idx in chosen.items():
        splits.create_array(name, shape=idx.shape, chunks=(max(len(idx), 1),), dtype="int64")[:] = idx
    return 0


def done_shards(url: str, storage_options: StorageOptions = None) -> set[int]:
    return set(np.flatnonzero(storage.open_group(url, "r", storage_options)["shard_done"][:]).tolist())


def write_shard(url: str, shard: int, start: int, images: np.ndarray, labels: np.ndarray,
                storage_options: StorageOptions = None) -> None:
    """Write images (m, N, N) and labels (m,) at [start, start + m), then mark the shard done."""
    group = storage.open_group(url, "r+", storage_options)
    group["images"][start:start + len(images)] = images
    group["labels"].set_orthogonal_selection(np.arange(start, start + len(labels)), labels)
    group["shard_done"][shard] = True


def validate(url: str, storage_options: StorageOptions = None) -> dict[str, Any]:
    """Check a written store (all shards, finite pixels in [0, 1], a positive peak per image, splits
    partitioning range(n)); returns summary statistics, or raises ValueError listing the problems."""
    group = storage.open_group(url, "r", storage_options)
    meta = dict(group.attrs[ATTR])
    images, n = group["images"], meta["n"]
    problems = []
    missing = sorted(set(range(meta["n_shards"])) - done_shards(url, storage_options))
    if missing:
        problems.append(f"shards not written: {missing[:10]}")
    peaks, total, nonzero = np.zeros(n, np.float32), 0.0, 0
    step = images.chunks[0] * 8
    for i in range(0, n, step):
        block = images[i:i + step]
        if not np.isfinite(block).all() or block.min() < 0 or block.max() > 1:
            problems.append(f"images {i}..{i + len(block) - 1}: pixels outside [0, 1] or not finite")
            continue
        peaks[i:i + len(block)] = block.max(axis=(1, 2))
        total += float(block.sum(dtype=np.float64))
        nonzero += int((block > 0).sum())
    if (peaks <= 0).any():
        problems.append(f"{int((peaks <= 0).sum())} images have no positive pixel")
    index = np.concatenate([group["splits"][s][:] for s in SPLITS])
    if len(index) != n or not np.array_equal(np.sort(index), np.arange(n)):
        problems.append("splits do not partition the images")
    if problems:
        raise ValueError(f"{url}: invalid dataset: " + "; ".join(problems))
    pixels = n * meta["N"] ** 2
    return {"n": n, "N": meta["N"], "mean_pixel": total / pixels, "nonzero_fraction": nonzero / pixels,
            "splits": {s: int(group["splits"][s].shape[0]) for s in SPLITS},
            "labels": {int(k): int(v) for k, v in zip(*np.unique(group["labels"][:], return_counts=True))}}


def publish(partial: str, final: str, storage_options: StorageOptions = None) -> None:
    """Rename partial → final (replacing an unpublished leftover), then mark it complete."""
    storage.remove(final, storage_options)
    storage.rename(partial, final, storage_options)
    group = storage.open_group(final, "r+", storage_options)
    group.attrs[ATTR] = {**dict(group.attrs[ATTR]), "complete": True,
                         "published": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


class Dataset:
    """A published dataset store, read-only: ``images`` (zarr array), ``meta``, ``split(name)``, ``read``."""

    def __init__(self, url: str, storage_options: StorageOptions = None):
        self.url = storage.normalise_url(url)
        meta = read_meta(self.url, storage_options)
        if not meta or meta.get("format") != FORMAT:
            raise ValueError(f"{url}: not a radio-ddrm dataset store")
        if not meta.get("complete"):
            raise ValueError(f"{url}: dataset is incomplete (unpublished or interrupted); prepare it again")
        self.meta, self.storage_options = meta, storage_options
        self.group = storage.open_group(self.url, "r", storage_options)
        self.images = self.group["images"]
        self._splits: dict[str, np.ndarray] = {}

    @property
    def N(self) -> int:
        return int(self.meta["N"])

    def __len__(self) -> int:
        return int(self.meta["n"])

    def split(self, name: str) -> np.ndarray:
        """The split's image indices; StoreDamagedError if its data are missing or undecodable (an
        unwritten chunk would otherwise read as zeros: every index 0)."""
        from stores.integrity import StoreDamagedError

        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; choose one of {SPLITS}")
        if name not in self._splits:
            try:
                array = self.group["splits"][name]
                # a sorted partition of > 1 distinct indices is never all zeros: its chunk was written
                if array.shape[0] > 1 and not storage.exists(storage.join(self.url, "splits", name, "c", "0"),
                                                         self.storage_options):
                    raise KeyError("its chunk is missing")
                self._splits[name] = array[:]
            except Exception as err:  # noqa: BLE001 - a missing chunk, undecodable bytes, unreadable metadata
                raise StoreDamagedError(f"dataset store {self.url} is damaged: splits/{name} cannot be read "
                                        f"({type(err).__name__}: {str(err).splitlines()[0][:160] if str(err) else ''}); "
                                        f"prepare the dataset again") from None
        return self._splits[name]

    def read(self, indices: np.ndarray) -> np.ndarray:
        """Images (len(indices), N, N) float32 in [0, 1]."""
        return self.images.get_orthogonal_selection((np.asarray(indices, dtype=np.int64), slice(None), slice(None)))

    def labels(self, indices: Optional[np.ndarray] = None) -> np.ndarray:
        labels = self.group["labels"][:]
        return labels if indices is None else labels[np.asarray(indices)]

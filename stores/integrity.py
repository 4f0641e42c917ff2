"""Checking a survey store before it is resumed: a damaged store (a deleted chunk, a truncated
``zarr.json``) is detected with an error that names it, the affected observations are marked not done,
and the next run recomputes them. Nothing damaged is ever read as data: image and metric arrays are
filled with NaN where a chunk is missing, and ``done`` (set last) with False.

Checks: every per-observation array's metadata opens; every observation marked done has its chunk in
every per-observation array (``<array>/c/<i>/...``, one chunk per observation by the store's layout).
Repairs: an array whose metadata is unreadable is recreated empty (then no observation is complete);
observations with a missing chunk lose their ``done`` flag.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from stores import storage
from stores.storage import StorageOptions

PER_OBS_SCALARS = ("metrics", "finished_at")


class StoreDamagedError(RuntimeError):
    """A store failed its check; the message names it and says what was repaired."""


def per_observation_arrays(meta: dict[str, Any]) -> list[str]:
    names = list(meta["images"]) + list(PER_OBS_SCALARS)
    if meta.get("config", {}).get("save_samples"):
        names += [f"{s}_samples" for s in meta["samplers"]]
    return names


def _chunk_indices(url: str, name: str, storage_options: StorageOptions) -> set[int]:
    """Observation indices whose chunk of array ``name`` exists (first chunk coordinate)."""
    fs, path = storage.filesystem(storage.join(url, name, "c"), storage_options)
    try:
        files = fs.find(path)
    except FileNotFoundError:
        return set()
    out = set()
    for f in files:
        first = f[len(path):].lstrip("/").split("/", 1)[0]
        if first.isdigit():
            out.add(int(first))
    return out


def _array_metadata_ok(url: str, name: str, storage_options: StorageOptions) -> bool:
    raw = storage.read_bytes(storage.join(url, name, "zarr.json"), storage_options)
    try:
        return raw is not None and json.loads(raw).get("node_type") == "array"
    except ValueError:
        return False


def check_and_repair(url: str, meta: dict[str, Any], storage_options: StorageOptions = None) -> None:
    """Raise StoreDamagedError (after repairing, so that the next run recomputes what was lost) if the
    store at ``url`` (metadata ``meta``) is damaged; return quietly if it is whole."""
    group = storage.open_group(url, "r+", storage_options)
    n, problems = int(meta["n_obs"]), []
    broken = [name for name in per_observation_arrays(meta) + ["done"]
              if not _array_metadata_ok(url, name, storage_options)]
    for name in broken:
        problems.append(f"array {name!r} has unreadable metadata (recreated empty)")
        _recreate(group, url, name, n, meta, storage_options)
    done = group["done"][:]
    lost = np.zeros(n, dtype=bool)
    for name in per_observation_arrays(meta):
        have = _chunk_indices(url, name, storage_options)
        missing = np.array([bool(done[i]) and i not in have for i in range(n)])
        if missing.any():
            problems.append(f"{int(missing.sum())} chunk(s) of {name!r} missing")
        lost |= missing
    if not problems:
        return
    for i in np.flatnonzero(lost):
        group["done"][int(i)] = False
    raise StoreDamagedError(f"survey store {url} is damaged: {'; '.join(problems)}. {int(lost.sum())} observation(s) "
                            f"marked not done; rerun to recompute them")


def _recreate(group, url: str, name: str, n: int, meta: dict[str, Any], storage_options: StorageOptions) -> None:
    storage.remove(storage.join(url, name), storage_options)
    N, S = int(meta["N"]), int(meta.get("config", {}).get("samples", 1))
    if name == "done":
        group.create_array("done", shape=(n,), chunks=(1,), dtype="bool", fill_value=False)
    elif name == "metrics":
        cols = len(meta["columns"])
        group.create_array("metrics", shape=(n, cols), chunks=(1, cols), dtype="float64", fill_value=np.nan)
    elif name == "finished_at":
        group.create_array("finished_at", shape=(n,), chunks=(1,), dtype="float64", fill_value=np.nan)
    elif name.endswith("_samples"):
        group.create_array(name, shape=(n, S, N, N), chunks=(1, S, N, N), dtype="float32", fill_value=np.nan)
    else:
        group.create_array(name, shape=(n, N, N), chunks=(1, N, N), dtype="float32", fill_value=np.nan)

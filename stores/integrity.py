"""Checking a survey store before it is resumed: a damaged store (a deleted chunk, a truncated
``zarr.json``) is detected with an error that names it, the affected observations are marked not done,
and the next run recomputes them. Nothing damaged is ever read as data: image and metric arrays are
filled with NaN where a chunk is missing, and ``done`` (set last) with False.

Checks: every array's metadata opens (the plan arrays ``obs_*``, the per-observation arrays and
``done``); the plan arrays' one chunk decodes and holds no fill value (-1: the chunk is lost, and every
observation's label with it; a fill of 0 would have relabelled every observation as the first array and
image); every
observation marked done has its chunk in every per-observation array (``<array>/c/<i>/...``, one chunk per
observation by the store's layout); the small arrays (``metrics``, ``finished_at``, ``done``) decode.
Repairs (``check_and_repair``, before a resume): an array whose metadata is unreadable is recreated empty
(then no observation is complete); plan arrays are rewritten from the plan when the caller gives it;
observations with a missing or undecodable chunk lose their ``done`` flag. ``verify`` (the report) only
checks, and never writes inside the store.
"""

from __future__ import annotations

import json
from typing import Any, Optional

import numpy as np

from stores import storage
from stores.storage import StorageOptions

PER_OBS_SCALARS = ("metrics", "finished_at")
PLAN_ARRAYS = ("obs_image", "obs_array", "obs_sigma", "obs_K", "obs_split")
PLAN_FILL = -1  # never a plan value: a lost chunk of an obs_* array reads as -1, not as array 0 and image 0


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


def _undecodable(group, name: str, n: int, per_obs: bool) -> list[int]:
    """Chunk indices of array ``name`` that exist but do not decode (one chunk per observation if
    ``per_obs``, else the array's one chunk, index 0)."""
    try:
        group[name][:]
        return []
    except Exception:  # noqa: BLE001 - zstd, JSON, shape errors: all mean a damaged chunk
        pass
    if not per_obs:
        return [0]
    bad = []
    for i in range(n):
        try:
            group[name][i]
        except Exception:  # noqa: BLE001
            bad.append(i)
    return bad


def _findings(url: str, meta: dict[str, Any], storage_options: StorageOptions):
    """(problems, arrays with unreadable metadata, damaged plan arrays, per-array undecodable chunks,
    observations done but lost)."""
    group = storage.open_group(url, "r", storage_options)
    n, problems = int(meta["n_obs"]), []
    names = list(PLAN_ARRAYS) + per_observation_arrays(meta) + ["done"]
    broken = [name for name in names if not _array_metadata_ok(url, name, storage_options)]
    problems += [f"array {name!r} has unreadable metadata" for name in broken]
    plan = [name for name in PLAN_ARRAYS if name in broken or _undecodable(group, name, n, per_obs=False)
            or (group[name][:] == PLAN_FILL).any()]  # a lost chunk reads as the fill value
    problems += [f"plan array {name!r} has no readable data (observation labels unknown)" for name in plan
                 if name not in broken]
    undecodable = {name: _undecodable(group, name, n, per_obs=True)
                   for name in (*PER_OBS_SCALARS, "done") if name not in broken}
    problems += [f"{len(bad)} chunk(s) of {name!r} cannot be decoded" for name, bad in undecodable.items() if bad]
    done = np.zeros(n, dtype=bool)
    if "done" not in broken:
        bad_done = set(undecodable.get("done", []))
        done = np.array([i not in bad_done and bool(group["done"][i]) for i in range(n)], dtype=bool) if bad_done \
            else group["done"][:]
    lost = np.zeros(n, dtype=bool)
    for name in per_observation_arrays(meta):
        if name in broken:  # recreated empty by the repair: every done observation loses it
            lost |= done
            continue
        have = _chunk_indices(url, name, storage_options) - set(undecodable.get(name, []))
        missing = np.array([bool(done[i]) and i not in have for i in range(n)], dtype=bool)
        if missing.any():
            problems.append(f"{int(missing.sum())} chunk(s) of {name!r} missing")
        lost |= missing
    return problems, broken, plan, undecodable, lost


def verify(url: str, meta: dict[str, Any], storage_options: StorageOptions = None) -> None:
    """StoreDamagedError naming the store and what is damaged, or quietly nothing; writes nothing."""
    problems = _findings(url, meta, storage_options)[0]
    if problems:
        raise StoreDamagedError(f"survey store {url} is damaged: {'; '.join(problems)}. Rerun the reconstruction "
                                f"with the same settings to repair it and recompute what was lost")


def check_and_repair(url: str, meta: dict[str, Any], storage_options: StorageOptions = None,
                     plan: Optional[dict[str, np.ndarray]] = None) -> None:
    """Raise StoreDamagedError (after repairing, so that the next run recomputes what was lost) if the
    store at ``url`` (metadata ``meta``) is damaged; return quietly if it is whole. ``plan``: the plan
    arrays by name (``stores.survey.plan``), to rewrite damaged ones; without it they are reported only."""
    problems, broken, bad_plan, undecodable, lost = _findings(url, meta, storage_options)
    if not problems:
        return
    group = storage.open_group(url, "r+", storage_options)
    n = int(meta["n_obs"])
    for name in broken:
        if name not in PLAN_ARRAYS:
            _recreate(group, url, name, n, meta, storage_options)
    for name in bad_plan if plan is not None else ():
        storage.remove(storage.join(url, name), storage_options)
        group.create_array(name, shape=(n,), chunks=(n,), dtype=plan[name].dtype, fill_value=PLAN_FILL)[:] = plan[name]
    for name, bad in undecodable.items():
        for i in bad:
            storage.remove(storage.join(url, name, "c", str(i)), storage_options)
            lost[i] = True
    if "done" not in broken:
        for i in np.flatnonzero(lost):
            group["done"][int(i)] = False
    fixed = "plan rewritten; " if bad_plan and plan is not None else ""
    raise StoreDamagedError(f"survey store {url} is damaged: {'; '.join(problems)}. {fixed}{int(lost.sum())} "
                            f"observation(s) marked not done; rerun to recompute them")


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

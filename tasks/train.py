"""Prefect tasks of prior training: plan (find checkpoints to resume), fit with Ray Train, artifacts."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass
from typing import Any, Optional

import ray
import torch
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer

import ddrm
from configs import TrainConfig, stable_hash
from ddrm.diffusion.ddpm import sample_ddim
from ddrm.inverse.units import to_image
from reporting.artifacts import artifact_key, png_markdown
from reporting.plots import image_grid_png, loss_curve_png
from reporting.progress import progress_artifact, update_progress
from runtime.ray_cluster import ensure_ray, plan_workers
from runtime.train_backend import LoopbackTorchConfig
from stores import runs, storage
from stores.checkpoints import PriorMeta, latest_checkpoint, load_prior, read_meta
from stores.dataset import Dataset
from stores.storage import StorageOptions

from .train_worker import train_loop_per_worker

HISTORY = "history.json"
PROGRESS_POLL_S = 2.0


@dataclass(frozen=True)
class TrainPlan:
    """Where the run lives, and its latest checkpoint (step, URL) if any."""

    run_dir: str
    storage_path: str
    run_name: str
    latest: Optional[tuple[int, str]]
    done: bool
    dataset_hash: str


@ray.remote(num_cpus=0)
class ProgressLog:
    """Rank 0 pushes metric rows; the driver polls them into the Prefect log."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def push(self, row: dict) -> None:
        self.rows.append(row)

    def since(self, i: int) -> list[dict]:
        return self.rows[i:]


@task(cache_policy=NO_CACHE)
def plan_training(config: TrainConfig, dataset: str, root: str, storage_options: StorageOptions = None) -> TrainPlan:
    """Check the dataset and storage; name the run by (train config, dataset) and find its checkpoints."""
    storage.check_reachable(root, storage_options)
    meta = Dataset(dataset, storage_options).meta
    key = stable_hash({"train": config.content_key(), "dataset": meta["config_hash"]})
    storage_path = runs.priors_dir(root)
    run_name = f"{config.name}-{key}"
    run_dir = storage.join(storage_path, run_name)
    latest = latest_checkpoint(run_dir, storage_options)
    done = latest is not None and latest[0] >= config.optim.steps
    logger = get_run_logger()
    if latest:
        logger.info("run %s: checkpoint at step %d of %d%s", run_dir, latest[0], config.optim.steps,
                    " (complete, reusing it)" if done else ", resuming from it")
    return TrainPlan(run_dir, storage_path, run_name, latest, done, meta["config_hash"])


def _ray_storage(url: str, storage_options: StorageOptions) -> dict[str, Any]:
    """RunConfig storage arguments; remote storage goes through a pyarrow view of our fsspec filesystem,
    so Ray Train finds endpoint and credentials the same way as everything else."""
    if not storage.is_remote(url):
        return {"storage_path": url}
    import pyarrow.fs

    fs, path = storage.filesystem(url, storage_options)
    return {"storage_path": path, "storage_filesystem": pyarrow.fs.PyFileSystem(pyarrow.fs.FSSpecHandler(fs))}


HISTORY_EVERY_S = 60.0


def _poll(progress, total: int, stop: threading.Event, rows: list, logger, persist, artifact=None) -> None:
    """Stream rank 0's rows into the log, and persist the history about once a minute, so a run killed
    mid-way keeps its loss curve (``persist(rows)`` merges into history.json)."""
    saved_at = time.monotonic()
    while True:
        new = ray.get(progress.since.remote(len(rows)))
        for row in new:
            rows.append(row)
            logger.info("step %d/%d  loss %.5f  lr %.2e  %.1f samples/s (%d workers)", row["step"], total,
                        row["loss"], row["lr"], row["samples_per_s"], row["world_size"])
        if new:
            update_progress(artifact, new[-1]["step"] / max(total, 1))  # the Prefect UI's progress bar
        if new and time.monotonic() - saved_at > HISTORY_EVERY_S:
            persist(list(rows))
            saved_at = time.monotonic()
        if stop.wait(PROGRESS_POLL_S):
            for row in ray.get(progress.since.remote(len(rows))):
                rows.append(row)
            return


@task(cache_policy=NO_CACHE)
def fit_prior(config: TrainConfig, plan: TrainPlan, dataset: str, ray_address: Optional[str] = None,
              storage_options: StorageOptions = None) -> dict[str, Any]:
    """Run (or resume) Ray Train; returns {"checkpoint", "history", "workers", "use_gpu"}."""
    ensure_ray(ray_address)
    workers, gpu = plan_workers(config.num_workers, config.cpus_per_worker, config.use_gpu, "training workers")
    logger = get_run_logger()
    logger.info("training %s on %d %s worker(s), batch %d per worker", plan.run_name, workers, "GPU" if gpu else "CPU",
                config.batch_size)
    progress = ProgressLog.remote()
    meta = PriorMeta(kind="ddpm", N=Dataset(dataset, storage_options).N, schedule=config.schedule, unet=config.unet,
                     steps=config.optim.steps, train=config.to_dict(), dataset=dataset,
                     dataset_hash=plan.dataset_hash, package_version=ddrm.__version__)
    per_worker = {"CPU": config.cpus_per_worker, **({"GPU": 1} if gpu else {})}
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"train": config, "dataset": dataset, "meta": meta, "progress": progress,
                           "storage_options": storage_options,
                           "run_dir": plan.run_dir},
        torch_config=LoopbackTorchConfig(),  # the DDP store listens on the master address, not every interface
        scaling_config=ScalingConfig(num_workers=workers, use_gpu=gpu, resources_per_worker=per_worker),
        run_config=RunConfig(name=plan.run_name, **_ray_storage(plan.storage_path, storage_options),
                             failure_config=FailureConfig(max_failures=config.max_failures),
                             checkpoint_config=CheckpointConfig(num_to_keep=config.keep_checkpoints)),
    )
    rows: list[dict] = []
    stop = threading.Event()
    persist = lambda r: _merge_history(plan.run_dir, r, storage_options)  # noqa: E731
    artifact = progress_artifact(artifact_key("training", "progress"), f"{config.optim.steps} steps")
    poller = threading.Thread(target=_poll, args=(progress, config.optim.steps, stop, rows, logger, persist,
                                                  artifact), daemon=True)
    poller.start()
    failed = True
    try:
        trainer.fit()
        failed = False
    finally:
        stop.set()
        poller.join(timeout=30)
        ray.kill(progress)
        if failed:  # an interrupted run keeps its rows, so the rerun's history is continuous
            with contextlib.suppress(Exception):  # the training error is the one to raise
                _merge_history(plan.run_dir, rows, storage_options)
    latest = latest_checkpoint(plan.run_dir, storage_options)
    if latest is None or latest[0] < config.optim.steps:
        raise RuntimeError(f"{plan.run_dir}: training ended without a final checkpoint (latest: {latest})")
    history = _merge_history(plan.run_dir, rows, storage_options)
    return {"checkpoint": latest[1], "history": history, "workers": workers, "use_gpu": gpu}


def _merge_history(run_dir: str, rows: list[dict], storage_options: StorageOptions) -> list[dict]:
    """history.json in the run directory: metric rows by step, earlier (interrupted) runs included."""
    url = storage.join(run_dir, HISTORY)
    old = read_history(run_dir, storage_options)
    by_step = {r["step"]: r for r in old + rows}
    history = [by_step[s] for s in sorted(by_step)]
    storage.write_bytes(url, json.dumps(history).encode(), storage_options)
    return history


def read_history(run_dir: str, storage_options: StorageOptions = None) -> list[dict]:
    raw = storage.read_bytes(storage.join(run_dir, HISTORY), storage_options)
    return json.loads(raw) if raw else []


def prior_samples_png(checkpoint: str, n: int = 16, K: int = 100, seed: int = 0,
                      storage_options: StorageOptions = None) -> tuple[bytes, float]:
    """A PNG grid of n unconditional EMA samples (stochastic DDIM, η = 1, K steps) at the prior's N, and
    the seconds it took."""
    prior = load_prior(checkpoint, torch.device("cpu"), storage_options=storage_options)
    g = torch.Generator().manual_seed(seed)
    N = prior.meta.N
    t0 = time.perf_counter()
    x = sample_ddim(prior, torch.randn(n, 1, N, N, generator=g),
                    prior.schedule, K, eta=1.0, generator=g)
    return image_grid_png(to_image(x).clamp(0, 1)[:, 0].numpy()), time.perf_counter() - t0


@task(cache_policy=NO_CACHE)
def prior_artifacts(checkpoint: str, run_dir: str, storage_options: StorageOptions = None,
                    n_samples: int = 16, K: int = 100, seed: int = 0) -> str:
    """loss.png and samples.png (EMA model, stochastic DDIM, η = 1, K steps) in the run directory, and a
    markdown artifact."""
    meta = read_meta(checkpoint, storage_options)
    history = read_history(run_dir, storage_options)
    done = storage.read_bytes(storage.join(run_dir, "artifacts.json"), storage_options)
    if done is not None and json.loads(done).get("checkpoint") == checkpoint:  # made before: reuse, write nothing
        loss_png = storage.read_bytes(storage.join(run_dir, "loss.png"), storage_options) or b""
        samples_png = storage.read_bytes(storage.join(run_dir, "samples.png"), storage_options) or b""
        seconds = float(json.loads(done).get("seconds", float("nan")))
    else:
        loss_png = loss_curve_png([r["step"] for r in history], [r["loss"] for r in history],
                                  title=meta.train["name"])
        samples_png, seconds = prior_samples_png(checkpoint, n_samples, K, seed, storage_options)
        storage.write_bytes(storage.join(run_dir, "loss.png"), loss_png, storage_options)
        storage.write_bytes(storage.join(run_dir, "samples.png"), samples_png, storage_options)
        storage.write_bytes(storage.join(run_dir, "artifacts.json"),
                            json.dumps({"checkpoint": checkpoint, "seconds": seconds}).encode(), storage_options)
    last = history[-1] if history else {}
    markdown = "\n".join([
        f"# Prior `{meta.train['name']}`", "", f"Checkpoint: `{checkpoint}` (step {meta.step})", "",
        f"Final loss {last.get('loss', float('nan')):.5f}; {last.get('samples_per_s', float('nan')):.1f} "
        f"samples/s on {last.get('world_size', '?')} worker(s); peak worker memory "
        f"{max((r.get('peak_rss_mb', 0) for r in history), default=float('nan')):.0f} MB.", "",
        png_markdown(loss_png, "loss"), "",
        f"Unconditional EMA samples (DDIM, η=1, K={K}, {seconds:.1f} s):", "",
        png_markdown(samples_png, "samples")])
    key = artifact_key("prior", meta.train["name"])
    create_markdown_artifact(markdown=markdown, key=key, description=f"prior checkpoint {checkpoint}")
    return markdown

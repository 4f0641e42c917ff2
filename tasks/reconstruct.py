"""Fan-out DDRM reconstruction: a pool of Ray actors, each holding the prior and cached operators.

The driver feeds batches (one array and K each) through ``runtime.actor_pool.actor_pool``, which keeps
``QUEUED_PER_ACTOR`` batches on each actor (the next one is already there when a batch finishes), so
memory stays flat however large the survey. Actors (``tasks.reconstruct_worker``) write each observation
to the survey store as soon as its batch is done; when an actor or its node dies, the unfinished part
of its batches (by the store's ``done`` flags) goes to the actors still alive.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Optional

import torch
from prefect import get_run_logger, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE

from configs import GPU_BATCH, ReconstructConfig
from runtime.actor_pool import actor_pool
from runtime.ray_cluster import ensure_ray, plan_workers
from stores import runs, storage
from stores import survey as ss
from stores.integrity import PLAN_ARRAYS, check_and_repair
from stores.lease import Heartbeat, acquire
from stores.checkpoints import load_prior
from stores.dataset import Dataset
from stores.storage import StorageOptions

from .reconstruct_worker import ANALYTIC_PRIOR, Reconstructor, RemoteReconstructor, load_denoiser, prior_meta

__all__ = ["Reconstructor", "RemoteReconstructor", "SurveyPlan", "load_denoiser", "plan_survey", "run_actor_pool"]


@dataclass(frozen=True)
class SurveyPlan:
    url: str
    n_obs: int
    pending: int


QUEUED_PER_ACTOR = 2  # batches on each actor at once: one running, the next waiting in the actor
PROGRESS_EVERY_S = 2.0  # the progress artifact and log line, at most this often (each is a call to the Prefect API)


@task(cache_policy=NO_CACHE)
def plan_survey(config: ReconstructConfig, checkpoint: str, dataset: str, root: str,
                storage_options: StorageOptions = None) -> SurveyPlan:
    """Create (or reopen, to resume) the survey store; checks the prior and the dataset agree on N."""
    storage.check_reachable(root, storage_options)
    data = Dataset(dataset, storage_options)
    pmeta = prior_meta(checkpoint, data, storage_options)
    pmeta.check(checkpoint, N=data.N, max_K=max(config.K_values))
    key = ss.survey_key(config, data.meta["config_hash"], pmeta)
    url = runs.survey_url(root, config.name, key)
    meta = {"key": key, "dataset": dataset, "dataset_hash": data.meta["config_hash"], "checkpoint": checkpoint,
            "pixel_scale_arcsec": data.meta.get("pixel_scale_arcsec")}
    test, val = data.split("test"), data.split("val")
    plan = dict(zip(PLAN_ARRAYS, config.plan(test, val)))
    # under the lease: a second run started while the first creates the store must not find it half made
    with Heartbeat(acquire(url, storage_options=storage_options, log=get_run_logger().info)):
        n = ss.create(url, config, data.N, test, meta, storage_options, val_images=val)
        check_and_repair(url, ss.read_meta(url, storage_options), storage_options, plan)  # StoreDamagedError
    pending = int((~ss.load_results(url, storage_options)["done"]).sum())
    get_run_logger().info("survey %s: %d observations, %d to do", url, n, pending)
    return SurveyPlan(url, n, pending)


@task(cache_policy=NO_CACHE)
def run_actor_pool(plan: SurveyPlan, config: ReconstructConfig, checkpoint: str, dataset: str,
                   ray_address: Optional[str] = None, storage_options: StorageOptions = None) -> dict[str, Any]:
    """Reconstruct every unfinished observation, holding the store's lease (``stores.lease``: a second run
    of the same survey waits, then finds nothing left); returns {"done", "actors", "seconds", "obs_per_s"}."""
    logger = get_run_logger()
    idle = {"done": 0, "actors": 0, "seconds": 0.0, "obs_per_s": float("nan")}
    if plan.pending == 0:
        return idle
    with Heartbeat(acquire(plan.url, storage_options=storage_options, log=logger.info)):
        return _reconstruct_pending(plan, config, checkpoint, dataset, ray_address, storage_options) or idle


def _reconstruct_pending(plan: SurveyPlan, config: ReconstructConfig, checkpoint: str, dataset: str,
                         ray_address: Optional[str], storage_options: StorageOptions) -> Optional[dict[str, Any]]:
    logger = get_run_logger()
    if checkpoint != ANALYTIC_PRIOR:  # verified here, in the driver, before any actor starts
        load_prior(checkpoint, torch.device("cpu"), storage_options=storage_options)
    ensure_ray(ray_address)  # the batch size follows the kind of actor the cluster gives
    gpu_planned = plan_workers(config.num_actors, config.cpus_per_actor, config.use_gpu, "reconstruction actors")[1]
    batch_size = config.batch_size or (GPU_BATCH if gpu_planned else 1)
    batches = ss.pending_batches(plan.url, batch_size, storage_options)  # read under the lease: nothing twice
    if not batches:
        return None
    todo = sum(len(b.obs) for b in batches)
    progress = create_progress_artifact(progress=100.0 * (plan.n_obs - todo) / plan.n_obs,
                                        description=f"observations reconstructed in {plan.url}")
    t0, done = time.perf_counter(), 0
    with actor_pool(RemoteReconstructor, (checkpoint, dataset, plan.url, config, storage_options, config.cpus_per_actor),
                    len(batches), num_actors=config.num_actors, cpus_per_actor=config.cpus_per_actor,
                    use_gpu=config.use_gpu, what="reconstruction actors", ray_address=ray_address) as pool:
        n_actors = len(pool.actors)
        logger.info("%d observations in %d batches on %d %s actor(s)", todo, len(batches), n_actors,
                    "GPU" if pool.gpu else "CPU")
        reported = 0.0
        for rows in pool.run(batches, lambda actor, batch: actor.run.remote(batch),
                             lambda batch: ss.unfinished(plan.url, batch, storage_options), depth=QUEUED_PER_ACTOR):
            done += len(rows)
            if time.perf_counter() - reported >= PROGRESS_EVERY_S or done == todo:  # the Prefect API, at most every 2 s
                reported = time.perf_counter()
                update_progress_artifact(progress, progress=100.0 * (plan.n_obs - todo + done) / plan.n_obs)
                first = config.sampler_names[0]
                best = max(rows, key=lambda r: r[f"{first}_psnr"])
                logger.info("%d/%d observations done (%s: %s PSNR %.2f dB, dirty %.2f, CLEAN %.2f)", done, todo,
                            best["id"], first, best[f"{first}_psnr"], best["dirty_psnr"], best["clean_psnr"])
    seconds = time.perf_counter() - t0
    logger.info("%d observations in %.1f s on %d actor(s): %.3f observations/s", done, seconds, n_actors,
                done / seconds)
    return {"done": done, "actors": n_actors, "seconds": seconds, "obs_per_s": done / seconds}

"""Prefect tasks of ``image_observations``: plan (what is not done yet), image on a pool of Ray actors
(each loads the prior once; a file's operator is built in the actor), and the summary artifacts.

The pool is ``runtime.actor_pool.run_pool``: when an actor or its node dies, its file goes to the actors
still alive unless its summary was already written."""

from __future__ import annotations

import json
from typing import Optional

import ray
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from configs.image import ImageConfig
from reporting.artifacts import artifact_key, png_markdown
from runtime.actor_pool import has_room, run_pool
from runtime.ray_cluster import ensure_ray, plan_workers
from stores import storage
from stores.storage import StorageOptions

from .image import SUMMARY, Imager, expand_files, is_done, output_dir

# no restarts: a dead actor's file is requeued to the living by ``run_pool`` (a restart would wait for
# resources that a lost node took with it)
RemoteImager = ray.remote(max_restarts=0)(Imager)
TABLE_FIELDS = ("file", "source", "telescope", "n_vis", "n_flagged", "pixel_scale_arcsec", "sigma_jy_weights",
                "sigma_jy_scatter", "flux_scale_jy_per_pixel", "total_flux_jy", "total_flux_clean_jy",
                "chi2_per_coordinate", "seconds")


@task(cache_policy=NO_CACHE)
def plan_images(files, root: str, storage_options: StorageOptions = None) -> tuple[list[str], list[str]]:
    """(all files, those still to image): a file with a summary.json under the root is done."""
    storage.check_reachable(root, storage_options)
    everything = expand_files(files, storage_options)
    if not everything:
        raise ValueError(f"no files match {files!r}")
    pending = [f for f in everything if not is_done(root, f, storage_options)]
    get_run_logger().info("%d files, %d to image", len(everything), len(pending))
    return everything, pending


@task(cache_policy=NO_CACHE)
def run_imager_pool(pending: list[str], config: ImageConfig, root: str, ray_address: Optional[str] = None,
                    num_actors: Optional[int] = None, storage_options: StorageOptions = None) -> list[dict]:
    """Image every pending file on a pool of actors, each result persisted by its actor as it finishes;
    returns the failures ({file, error}). A bad file fails the run only with ``config.strict``."""
    logger = get_run_logger()
    if not pending:
        return []
    ensure_ray(ray_address)
    n, gpu = plan_workers(num_actors, 1, None, "imaging actors")
    n = min(n, len(pending))

    def new_actor():
        return RemoteImager.options(num_cpus=1, num_gpus=1 if gpu else 0).remote(config, root, storage_options, 1)

    def respawn():
        return new_actor() if has_room(1, gpu) else None

    def remaining(path: str) -> Optional[str]:  # a file its dead actor finished is not imaged again
        return None if is_done(root, path, storage_options) else path

    actors = [new_actor() for _ in range(n)]
    failures: list[dict] = []
    try:
        for i, result in enumerate(run_pool(actors, pending, lambda a, f: a.image.remote(f), remaining, respawn), 1):
            if "error" in result:
                logger.warning("skipped %s", result["error"])
                failures.append(result)
                if config.strict:
                    raise ValueError(result["error"])
            else:
                logger.info("%d/%d %s: total flux %.3g Jy (CLEAN %.3g), χ² %.3g, %.1f s", i, len(pending),
                            result["file"], result["total_flux_jy"] or float("nan"),
                            result["total_flux_clean_jy"] or float("nan"), result["chi2_per_coordinate"] or float("nan"),
                            result["seconds"])
    finally:
        for actor in actors:
            ray.kill(actor)
    return failures


@task(cache_policy=NO_CACHE)
def image_artifacts(files: list[str], failures: list[dict], root: str, storage_options: StorageOptions = None) -> dict:
    """The summary table and a gallery of every imaged file (Prefect artifacts); returns them."""
    rows, panels = [], []
    for f in files:
        raw = storage.read_bytes(storage.join(output_dir(root, f), SUMMARY), storage_options)
        if raw is None:
            continue
        summary = json.loads(raw)
        rows.append({k: summary.get(k) for k in TABLE_FIELDS})
        png = storage.read_bytes(summary["png"], storage_options)
        if png:
            panels.append(f"### {summary['file']}\n\n{png_markdown(png, 'panel')}")
    rows += [{"file": f["file"], "source": f"skipped: {f['error']}"} for f in failures]
    if rows:
        create_table_artifact(table=rows, key=artifact_key("images", "summary"), description="imaged observations")
    if panels:
        create_markdown_artifact(markdown="\n\n".join(panels), key=artifact_key("images", "gallery"),
                                 description="dirty, CLEAN, posterior mean and std per observation")
    return {"rows": rows, "images": len(panels), "skipped": len(failures)}

"""Prefect tasks of ``image_observations``: plan (the prior loaded and verified once, here in the driver;
the run key; what is not done yet), image on a pool of Ray actors (each loads the prior once; a file's
operator is built in the actor: ``Imager``), and the summary artifacts and run record.

The pool is ``runtime.actor_pool.actor_pool``: when an actor or its node dies, its file goes to the actors
still alive unless its summary was already written; actors that cannot start fail the run."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Optional, Union

import ray
import torch
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from configs.image import ImageConfig
from imager.file import (SUMMARY, check_memory, finished, image_or_skip, input_checksum, output_dir, raise_fatal,
                          run_key, run_settings, write_run_record)
from imager.product import ImagingProduct, Outcome, Skipped, table_row
from reporting.artifacts import artifact_key, png_markdown
from reporting.progress import progress_artifact, update_progress
from runtime.actor_pool import actor_pool
from runtime.environment import configure_compute
from stores import storage
from stores.checkpoints import load_prior
from stores.inputs import expand_files
from stores.storage import StorageOptions


class Imager:
    """Loads the prior once (and checks it is the one the driver verified); images files on request (one
    operator per file, built here)."""

    def __init__(self, cfg: ImageConfig, root: str, storage_options: StorageOptions, threads: int,
                 prior_sha256: Optional[str] = None, command: str = "") -> None:
        configure_compute(threads)
        self.cfg, self.root, self.storage_options, self.command = cfg, root, storage_options, command
        # the U-Net on the actor's GPU where it has one; the NUFFT likelihood stays on the CPU (``EpsDenoiser``)
        self.prior = load_prior(cfg.prior, torch.device("cuda" if torch.cuda.is_available() else "cpu"))
        if prior_sha256 and self.prior.sha256 != prior_sha256:
            raise ValueError(f"{cfg.prior}: the prior's weights changed since the run started "
                             f"({self.prior.sha256[:12]}… here, {prior_sha256[:12]}… verified)")

    def image(self, path: str) -> Union[Outcome, Skipped]:
        return image_or_skip(path, self.cfg, self.root, self.storage_options, self.prior, self.command)


# no restarts: a dead actor's file is requeued to the living by ``run_pool`` (a restart would wait for
# resources that a lost node took with it)
RemoteImager = ray.remote(max_restarts=0)(Imager)


@dataclass(frozen=True)
class ImagePlan:
    """The run key and settings, the prior's verified checksum, every file and those still to image."""

    key: str
    settings: dict
    prior_sha256: str
    files: list[str]
    pending: list[str]
    checksums: dict = field(default_factory=dict)


@task(cache_policy=NO_CACHE)
def plan_images(files, config: ImageConfig, root: str, storage_options: StorageOptions = None) -> ImagePlan:
    """Check the root is writable, load and verify the prior (checksum, K <= T, memory), then find what is
    done: a file whose summary has this run key and the SHA256 of its current bytes."""
    import torch

    from stores.checkpoints import load_prior

    storage.check_writable(root, storage_options)
    prior = load_prior(config.prior, torch.device("cpu"), storage_options=storage_options)
    prior.meta.check(config.prior, max_K=config.sampler.K)
    check_memory(config, prior)
    everything = expand_files(files, storage_options)
    if not everything:
        raise ValueError(f"no files match {files!r}")
    key, checksums = run_key(config, prior), {}
    for f in everything:
        try:
            checksums[f] = input_checksum(f, storage_options)
        except (OSError, ValueError):  # missing, a pipe or device: the actor reports it by name
            continue
    pending = [f for f in everything if f not in checksums or
               finished(root, key, f, checksums[f], storage_options) is None]
    get_run_logger().info("%d files, %d to image (run %s)", len(everything), len(pending), key)
    return ImagePlan(key, run_settings(config, prior), prior.sha256, everything, pending, checksums)


@task(cache_policy=NO_CACHE)
def run_imager_pool(plan: ImagePlan, config: ImageConfig, root: str, ray_address: Optional[str] = None,
                    num_actors: Optional[int] = None, storage_options: StorageOptions = None,
                    command: str = "") -> list[Skipped]:
    """Image every pending file on a pool of actors, each result persisted by its actor as it finishes;
    returns the files skipped. A bad file fails the run only with ``config.strict``."""
    logger = get_run_logger()
    pending = plan.pending
    if not pending:
        return []
    def remaining(path: str) -> Optional[str]:  # a file its dead actor finished is not imaged again
        sha = plan.checksums.get(path)
        return None if sha and finished(root, plan.key, path, sha, storage_options) else path

    failures: list[Skipped] = []
    artifact = progress_artifact(artifact_key("images", "progress"), f"{len(pending)} files to image")
    with actor_pool(RemoteImager, (config, root, storage_options, 1, plan.prior_sha256, command), len(pending),
                    num_actors=num_actors, cpus_per_actor=1, use_gpu=None, what="imaging actors",
                    ray_address=ray_address) as pool:
        for i, result in enumerate(pool.run(pending, lambda a, f: a.image.remote(f), remaining), 1):
            update_progress(artifact, i / len(pending))
            if isinstance(result, Skipped):
                raise_fatal(result)
                logger.warning("skipped %s", result.error)
                failures.append(result)
                if config.strict:
                    raise ValueError(result.error)
            else:
                p = result.product
                logger.info("%d/%d %s: total flux %.3g Jy (CLEAN %.3g), raw χ² %.3g, %.1f s", i, len(pending),
                            p.file, p.posterior.total_flux_jy, p.posterior.total_flux_clean_jy,
                            p.fit.chi2_raw_visibilities, p.timings.seconds)
    return failures


@task(cache_policy=NO_CACHE)
def image_artifacts(plan: ImagePlan, failures: list[Skipped], root: str, storage_options: StorageOptions = None) -> dict:
    """The summary table and a gallery of every imaged file (Prefect artifacts) and the run record
    (``run.json``); returns the rows and counts."""
    rows, panels, results, failed = [], [], [], {f.file for f in failures}
    for f in plan.files:
        raw = None if f in failed else storage.read_bytes(storage.join(output_dir(root, plan.key, f), SUMMARY),
                                                           storage_options)
        if raw is None:
            continue
        product = ImagingProduct.from_dict(json.loads(raw))
        results.append(Outcome(product, reused=f not in plan.pending))
        rows.append(table_row(product))
        png = storage.read_bytes(product.images.png, storage_options) if product.images.png else None
        if png:
            panels.append(f"### {product.file}\n\n{png_markdown(png, 'panel')}")
    rows += [{"file": f.file, "source": f"skipped: {f.error}"} for f in failures]
    if rows:
        create_table_artifact(table=rows, key=artifact_key("images", "summary"), description="imaged observations")
    if panels:
        create_markdown_artifact(markdown="\n\n".join(panels), key=artifact_key("images", "gallery"),
                                 description="dirty, CLEAN, posterior mean and std per observation")
    record = write_run_record(root, plan.key, plan.settings, results, failures, storage_options)
    return {"rows": rows, "images": len(results), "skipped": len(failures),
            "skipped_files": [f.record() for f in failures],
            "run": record, "run_key": plan.key}

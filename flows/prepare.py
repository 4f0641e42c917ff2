"""The ``prepare_dataset`` flow: synthetic or real radio galaxies → a published zarr store."""

from __future__ import annotations

import os
from typing import Optional, Union

from prefect import flow, get_run_logger, unmapped
from prefect.task_runners import ThreadPoolTaskRunner

from configs import PREPARE_PRESETS, PrepareConfig, resolve
from tasks.prepare import (
    chunked,
    collect_scans,
    create_store,
    plan_store,
    publish_store,
    scan_items,
    shard_ids,
    summarise_store,
    validate_store,
    write_ingest_shard,
    write_synthetic_shard,
)

PREPARE_WORKERS = max(2, min(4, os.cpu_count() or 1))


@flow(name="prepare_dataset", task_runner=ThreadPoolTaskRunner(max_workers=PREPARE_WORKERS))
def prepare_dataset(config: Union[PrepareConfig, str] = "demo", root: str = "runs",
                    storage_options: Optional[dict] = None) -> str:
    """Write (or reuse) the dataset store for ``config`` under ``<root>/data`` (root: a path or s3://...);
    returns its URL.

    Credentials belong in the standard AWS environment, not in ``storage_options``: flow
    parameters are stored by the Prefect server.
    """
    config = resolve(config, PREPARE_PRESETS, "prepare")
    logger = get_run_logger()
    plan = plan_store(config, root, storage_options)
    if plan.reused:
        return plan.final
    meta = {"normalisation": {"mode": config.normalisation, "scale": None}, "fit": config.fit,
            "pixel_scale_arcsec": config.pixel_scale_arcsec}
    if config.synthetic:
        n = config.n_images
        meta["provenance"] = {"source": "synthetic", "generator": config.galaxy.to_dict(), "seed": config.seed}
        create_store(plan, config, n, meta, storage_options)
        futures = write_synthetic_shard.map(unmapped(plan.partial), unmapped(config), unmapped(n),
                                            shard_ids(n, config), unmapped(storage_options))
    else:
        scans = scan_items.map(chunked(plan.items, config.shard_size), unmapped(config)).result()
        good, scale, meta["provenance"] = collect_scans(plan, config, scans)
        n = len(good)
        meta["normalisation"]["scale"] = scale
        create_store(plan, config, n, meta, storage_options)
        futures = write_ingest_shard.map(unmapped(plan.partial), unmapped(config),
                                         chunked(good, config.shard_size), shard_ids(n, config),
                                         unmapped(scale), unmapped(storage_options))
    written = sum(futures.result())
    logger.info("%d images written to %s", written, plan.partial)
    stats = validate_store(plan.partial, storage_options)
    url = publish_store(plan, storage_options)
    summarise_store(url, stats, storage_options)
    return url


"""The ``image_observations`` flow: many visibility files (a list or glob, local or s3://) imaged on a
pool of Ray actors; each result persisted as it finishes, a rerun images only what is missing."""

from __future__ import annotations

from typing import Optional, Union

from prefect import flow

from configs.image import ImageConfig, image_config
from tasks.image_pool import image_artifacts, plan_images, run_imager_pool


@flow(name="image_observations")
def image_observations(files: Union[str, list[str]], config: Union[dict, ImageConfig, None] = None,
                       root: str = "runs", ray_address: Optional[str] = None, num_actors: Optional[int] = None,
                       storage_options: Optional[dict] = None, command: str = "") -> dict:
    """Image every file to ``<root>/images/<run key>/<file>/`` (image.fits, panel.png, summary.json; see
    ``imager.file``); returns the summary rows and counts. ``config``: an ``ImageConfig``, its JSON, or
    options by name as a deployment's parameter gives them ({"N": 64, "K": 10}: ``configs.image.image_config``).
    Bad files are skipped and listed unless ``config.strict``. ``command``: the command line, recorded in the
    FITS products' HISTORY."""
    config = image_config(config)
    plan = plan_images(files, config, root, storage_options)
    failures = run_imager_pool(plan, config, root, ray_address, num_actors, storage_options, command)
    return {**image_artifacts(plan, failures, root, storage_options), "imaged_now": len(plan.pending) - len(failures)}

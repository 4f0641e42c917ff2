"""The ``reconstruct_survey`` and ``aggregate_metrics`` flows."""

from __future__ import annotations

from typing import Any, Optional, Union

from prefect import flow

from configs import RECONSTRUCT_PRESETS, ReconstructConfig, resolve
from stores.storage import normalise_url
from tasks.reconstruct import plan_survey, run_actor_pool
from tasks.report import aggregate


@flow(name="reconstruct_survey")
def reconstruct_survey(checkpoint: str, dataset: str, config: Union[ReconstructConfig, str] = "demo",
                       root: str = "runs", ray_address: Optional[str] = None,
                       storage_options: Optional[dict] = None) -> str:
    """Reconstruct every observation of the survey (test images × arrays × K) on a pool of Ray
    actors, persisting each as it finishes; a rerun does only what is missing. Returns the store URL
    (``<root>/surveys/<name>-<hash>.zarr``)."""
    config = resolve(config, RECONSTRUCT_PRESETS, "reconstruct")
    dataset = normalise_url(dataset)  # actors run elsewhere in the tree (or on other nodes)
    plan = plan_survey(config, checkpoint, dataset, root, storage_options)
    run_actor_pool(plan, config, checkpoint, dataset, ray_address, storage_options)
    return plan.url


@flow(name="aggregate_metrics")
def aggregate_metrics(survey: str, fits: bool = False, storage_options: Optional[dict] = None) -> dict[str, Any]:
    """Tables per (array, K) with dirty and CLEAN beside DDRM (CSV, Markdown, Prefect artifacts),
    the gallery and PSNR-against-K figures, and FITS files on request."""
    return aggregate(survey, fits, storage_options=storage_options)

"""The ``train_prior`` flow: a DDPM prior trained with Ray Train on a dataset store."""

from __future__ import annotations

from typing import Optional, Union

from prefect import flow

from configs import TRAIN_PRESETS, TrainConfig, resolve
from stores.storage import normalise_url
from tasks.train import fit_prior, plan_training, prior_artifacts


@flow(name="train_prior")
def train_prior(dataset: str, config: Union[TrainConfig, str] = "demo", root: str = "runs",
                ray_address: Optional[str] = None, storage_options: Optional[dict] = None) -> str:
    """Train (or resume, or reuse) the prior for ``dataset`` (a store URL from ``prepare_dataset``);
    checkpoints go to ``<root>/priors/<name>-<hash>``. Returns the final checkpoint's URL.

    ``ray_address`` None starts a local Ray on 127.0.0.1; otherwise e.g. ``ray://head:10001``.
    """
    config = resolve(config, TRAIN_PRESETS, "train")
    dataset = normalise_url(dataset)  # workers run elsewhere in the tree (or on other nodes)
    plan = plan_training(config, dataset, root, storage_options)
    checkpoint = plan.latest[1] if plan.done else \
        fit_prior(config, plan, dataset, ray_address, storage_options)["checkpoint"]
    prior_artifacts(checkpoint, plan.run_dir, storage_options)
    return checkpoint

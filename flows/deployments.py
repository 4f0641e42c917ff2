"""Scheduled deployments of the survey and its stage flows.

``DEPLOYMENTS`` is the single list: ``radio-ddrm serve`` serves it from one process
(``prefect.serve``), and ``infra/prefect.yaml`` declares the same deployments for a work pool
(``prefect deploy --all``); ``tests/test_infra.py`` checks the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

from flows.image import image_observations
from flows.prepare import prepare_dataset
from flows.reconstruct import aggregate_metrics, reconstruct_survey
from flows.survey import survey
from flows.train import train_prior


@dataclass(frozen=True)
class DeploymentSpec:
    name: str
    flow: Callable
    entrypoint: str
    cron: Optional[str] = None
    parameters: dict[str, Any] = field(default_factory=dict)
    description: str = ""


DEPLOYMENTS: tuple[DeploymentSpec, ...] = (
    DeploymentSpec("survey-demo-nightly", survey, "flows/survey.py:survey", "0 2 * * *", {"config": "demo"},
                   "the demo survey every night at 02:00: a smoke test of the whole system"),
    DeploymentSpec("survey-paper-weekly", survey, "flows/survey.py:survey", "0 3 * * 6", {"config": "paper"},
                   "the paper-scale survey every Saturday at 03:00 (GPU cluster: set ray_address and root)"),
    DeploymentSpec("prepare-dataset", prepare_dataset, "flows/prepare.py:prepare_dataset", None, {"config": "demo"},
                   "a dataset store; pass config (a preset name or a full config) and root"),
    DeploymentSpec("train-prior", train_prior, "flows/train.py:train_prior", None, {"config": "demo"},
                   "train or resume a prior; needs the dataset URL"),
    DeploymentSpec("reconstruct-survey", reconstruct_survey, "flows/reconstruct.py:reconstruct_survey", None,
                   {"config": "demo"}, "reconstruct a survey; needs checkpoint and dataset URLs"),
    DeploymentSpec("image-observations", image_observations, "flows/image.py:image_observations", None, {},
                   "image visibility files (uvfits); pass files (a list or glob, local or s3://) and root"),
    DeploymentSpec("aggregate-metrics", aggregate_metrics, "flows/reconstruct.py:aggregate_metrics", None, {},
                   "tables and figures of a survey store; needs its URL"),
)


def serve_deployments(only: Optional[Sequence[str]] = None) -> None:
    """Register the deployments with the Prefect API and run their scheduled and manual runs here."""
    from prefect import serve

    chosen = [d for d in DEPLOYMENTS if not only or d.name in only]
    unknown = set(only or ()) - {d.name for d in DEPLOYMENTS}
    if unknown:
        raise ValueError(f"unknown deployments {sorted(unknown)}; known: {[d.name for d in DEPLOYMENTS]}")
    serve(*[d.flow.to_deployment(name=d.name, cron=d.cron, parameters=d.parameters, description=d.description,
                                 tags=["radio-ddrm"]) for d in chosen])

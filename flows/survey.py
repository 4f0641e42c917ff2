"""The parent ``survey`` flow: prepare_dataset → train_prior (unless the prior is given) →
reconstruct_survey → aggregate_metrics."""

from __future__ import annotations

from typing import Any, Optional, Union

from prefect import flow

from flows.prepare import prepare_dataset
from flows.reconstruct import aggregate_metrics, reconstruct_survey
from flows.train import train_prior
from configs import SURVEY_PRESETS, SurveyConfig, resolve


@flow(name="survey")
def survey(config: Union[SurveyConfig, str] = "demo", root: str = "runs", ray_address: Optional[str] = None,
           storage_options: Optional[dict] = None) -> dict[str, Any]:
    """The whole survey as four subflows. Every stage reuses its outputs when they exist for the same
    config, so a rerun costs almost nothing and a crashed survey resumes where it stopped.
    Returns the dataset, checkpoint, survey and report locations and the Markdown table."""
    config = resolve(config, SURVEY_PRESETS, "survey")
    dataset = prepare_dataset(config.prepare, root, storage_options)
    checkpoint = train_prior(dataset, config.train, root, ray_address, storage_options) \
        if config.prior == "trained" else config.prior  # "gaussian" or a packaged prior's name
    survey_url = reconstruct_survey(checkpoint, dataset, config.reconstruct, root, ray_address, storage_options)
    report = aggregate_metrics(survey_url, config.fits, storage_options)
    return {"dataset": dataset, "checkpoint": checkpoint, "survey": survey_url, "report": report["report"],
            "markdown": report["markdown"], "fits": report["fits"]}

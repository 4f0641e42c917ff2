"""The run-root layout, defined once. A root is a local folder or ``s3://bucket/prefix``:

    <root>/data/<name>-<key>.zarr           dataset stores (``.partial`` while written)
    <root>/priors/<run>/checkpoint_*        prior training runs (Ray Train storage)
    <root>/surveys/<name>-<key>.zarr        survey stores
    <root>/surveys/<name>-<key>.report/     their tables, figures and FITS
"""

from __future__ import annotations

from . import storage


def dataset_url(root: str, name: str, key: str) -> str:
    return storage.join(storage.normalise_url(root), "data", f"{name}-{key}.zarr")


def priors_dir(root: str) -> str:
    return storage.join(storage.normalise_url(root), "priors")


def survey_url(root: str, name: str, key: str) -> str:
    return storage.join(storage.normalise_url(root), "surveys", f"{name}-{key}.zarr")


def report_dir(survey: str) -> str:
    """``<store>.report`` beside the store (never inside it, whatever the URL's trailing slashes)."""
    return survey.rstrip("/").removesuffix(".zarr") + ".report"

"""Prefect artifact helpers, defined once: artifact keys (slugs) and PNGs embedded in Markdown."""

from __future__ import annotations

import base64
import re


def artifact_key(*parts: str) -> str:
    """A Prefect artifact key: lower-case letters, digits and dashes (e.g. ``survey-survey-demo``)."""
    return re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")


def png_markdown(png: bytes, alt: str) -> str:
    """Markdown image with the PNG inline (data URI), so the artifact needs no file server."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"

"""Progress a person watches: a tqdm bar on stderr per imaged file (stage by stage: each field of the ladder,
then the products, with an ETA from the stages done), and Prefect progress artifacts for the flows (the
fraction of files imaged, or of training steps done) in the Prefect UI."""

from __future__ import annotations

import contextlib
import sys
from typing import Any, Optional

from tqdm import tqdm


class StageBar:
    """A bar over one file's stages, created at the first ``stage`` call (when their count is known), drawn
    only where stderr is a terminal (not into logs or pipes); ``show`` False makes every call a no-op (actors,
    library callers)."""

    def __init__(self, name: str, show: bool) -> None:
        self.name, self.show, self.bar = name, show, None

    def stage(self, done: int, total: int, what: str) -> None:
        """``done`` of ``total`` stages finished; ``what`` the one starting now."""
        if not self.show:
            return
        if self.bar is None:
            self.bar = tqdm(total=total, file=sys.stderr, unit="stage", leave=False, disable=None,  # a terminal only
                            bar_format="{desc} (stage {n}/{total}) [{elapsed}<{remaining}]")
        self.bar.n = done
        self.bar.set_description_str(f"{self.name}: {what}", refresh=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def angle(arcsec: float) -> str:
    """An angle in a readable unit: μas, mas or arcsec (the panel's rule, ``imaging_panel._unit``)."""
    from reporting.imaging_panel import _unit

    label, per = _unit(arcsec)
    return f"{arcsec / per:.3g} {label}"


def progress_artifact(key: str, description: str) -> Optional[Any]:
    """A Prefect progress artifact at 0 % (its id), or None outside a Prefect run or without a server."""
    with contextlib.suppress(Exception):
        from prefect.artifacts import create_progress_artifact

        return create_progress_artifact(progress=0.0, key=key, description=description)
    return None


def update_progress(artifact_id: Optional[Any], fraction: float) -> None:
    """Set the artifact to ``fraction`` (0..1); progress reporting never stops the work it reports."""
    if artifact_id is None:
        return
    with contextlib.suppress(Exception):
        from prefect.artifacts import update_progress_artifact

        update_progress_artifact(artifact_id=artifact_id, progress=100.0 * fraction)

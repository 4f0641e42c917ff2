"""Process environment for local runs: loopback-only Ray, no telemetry (see stack notes)."""

from __future__ import annotations

import os

LOCAL_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # for processes started from here; ray_cluster.loopback_only enforces it
    "RAY_AUTH_MODE": "disabled",  # no login token written to ~/.ray for local clusters
    "RAY_USAGE_STATS_ENABLED": "0",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
}


def configure_local_environment() -> None:
    """Set LOCAL_ENV defaults (values already in the environment win)."""
    for key, value in LOCAL_ENV.items():
        os.environ.setdefault(key, value)

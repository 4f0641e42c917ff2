"""Process environment: loopback-only Ray and no telemetry for local runs (see stack notes), and the
settings of a process that runs torch on its CPUs."""

from __future__ import annotations

import os

from runtime.allocator import keep_freed_memory

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


def configure_compute(threads: int) -> None:
    """A process about to run torch: ``threads`` intra-op threads, and freed tensors kept in the heap
    (``runtime.allocator.keep_freed_memory``). Called by every actor and training worker and by the tests; the
    command line's file mode, which keeps torch's default threads, applies ``keep_freed_memory`` alone."""
    import torch

    torch.set_num_threads(threads)
    keep_freed_memory()

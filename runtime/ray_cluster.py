"""Connecting to Ray (a local loopback cluster or a given address) and sizing work to what it has."""

from __future__ import annotations

import logging
import os
import socket
from typing import Optional

import ray

from runtime.environment import configure_local_environment


class InsufficientResourcesError(RuntimeError):
    """The Ray cluster cannot place what was asked for; raised at once rather than waiting forever."""


def ensure_ray(address: Optional[str] = None, num_cpus: Optional[int] = None) -> dict:
    """Connect to ``address`` (e.g. ``ray://head:10001`` or ``auto``), or start a local Ray bound to
    127.0.0.1 with telemetry off. Reuses an existing connection. Returns the cluster's resources."""
    if not ray.is_initialized():
        if address:
            probe_address(address)
            _keep_loopback(address)
            try:
                ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
            except Exception as err:  # ConnectionError, TimeoutError, ValueError...
                raise RuntimeError(f"cannot connect to the Ray cluster at {address!r}: {err}") from None
        else:
            configure_local_environment()
            loopback_only()
            ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level=logging.WARNING,
                     log_to_driver=False, _node_ip_address=LOOPBACK)
    return ray.cluster_resources()


LOOPBACK = "127.0.0.1"
SINGLE_HOST_VAR = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def loopback_only() -> None:
    """Make the Ray this process starts (or joins at 127.0.0.1) bind every server to 127.0.0.1.

    Ray decides from its single-host switch: with ``ray._private.ray_constants.ENABLE_RAY_CLUSTER`` True, it
    replaces a loopback node address by the machine's own IP (``services.resolve_ip_for_localhost``), and the
    GCS, raylet, workers and agents then bind that IP or every interface. The constant is read from
    ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` once, when ``ray`` is first imported, so setting the variable later
    (after any module imported ray) changes nothing. Both are therefore set here, just before Ray starts:
    the constant for this process, the variable (forced, not defaulted) for every process Ray spawns, which
    reads it at its own import.
    """
    import ray._private.ray_constants as ray_constants

    os.environ[SINGLE_HOST_VAR] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False


def _keep_loopback(address: str) -> None:
    """A cluster at 127.0.0.1 (infra/local-cluster.sh) is reached at 127.0.0.1: Ray otherwise swaps a loopback
    address for the machine's own IP (where its servers do not listen), unless its single-host switch is on."""
    host = address.removeprefix("ray://").rpartition(":")[0]
    if host in ("127.0.0.1", "localhost", "::1"):
        loopback_only()


def probe_address(address: str, timeout_s: float = 3.0) -> None:
    """Fail within seconds if a ``host:port`` or ``ray://host:port`` address does not answer
    (ray.init itself keeps retrying for minutes). ``auto`` and other forms are left to Ray."""
    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as err:
        raise RuntimeError(f"cannot reach the Ray cluster at {address!r}: {err}") from None


def plan_workers(num_workers: Optional[int], cpus_per_worker: int, use_gpu: Optional[bool],
                 what: str = "workers") -> tuple[int, bool]:
    """(workers, use_gpu) that fit the cluster's *available* resources now.

    use_gpu None: GPUs if the cluster has any. num_workers None: one per free GPU, else one per
    ``cpus_per_worker`` free CPUs. Asking for more than fits raises InsufficientResourcesError
    (Ray would otherwise wait silently for resources that never come).
    """
    free, total = ray.available_resources(), ray.cluster_resources()
    gpus, cpus = int(free.get("GPU", 0)), int(free.get("CPU", 0))
    gpu = bool(total.get("GPU", 0)) if use_gpu is None else use_gpu
    fit = gpus if gpu else cpus // cpus_per_worker
    if gpu and not total.get("GPU", 0):
        raise InsufficientResourcesError(f"use_gpu=True but the Ray cluster has no GPUs ({total})")
    wanted = num_workers if num_workers is not None else max(fit, 1)
    if wanted > fit:
        unit = "GPU" if gpu else f"{cpus_per_worker} CPU"
        raise InsufficientResourcesError(
            f"asked for {wanted} {what} of {unit} each, but the Ray cluster can place {fit} now "
            f"(free: {cpus} CPU, {gpus} GPU; total: {int(total.get('CPU', 0))} CPU, {int(total.get('GPU', 0))} GPU). "
            f"Ask for fewer, free running actors, or add nodes.")
    return wanted, gpu

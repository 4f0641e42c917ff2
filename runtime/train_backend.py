"""Ray Train's torch backend with its rendezvous store bound to the master address, not every interface.

DDP's rendezvous (``env://``) starts a ``torch.distributed.TCPStore`` server on rank 0, and that server
listens on ``::`` (all interfaces, IPv4 and IPv6) whatever ``MASTER_ADDR`` says: anyone who reaches the
machine could then write into the process group's store. Here rank 0 binds the listening socket itself, to
``MASTER_ADDR:MASTER_PORT`` (127.0.0.1 on a local Ray; the rank-0 node's own address on a cluster, which the
other ranks connect to), and hands it to the store (``master_listen_fd``). The other ranks connect as before.

``LoopbackTorchConfig`` is a ``ray.train.torch.TorchConfig`` whose backend installs that rendezvous in each
worker before Ray Train initialises the process group.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import timedelta
from typing import Iterator
from urllib.parse import parse_qsl, urlparse

from ray.train.torch import TorchConfig
from ray.train.torch.config import _TorchBackend

_LISTENERS: list[socket.socket] = []  # rank 0's bound sockets, kept open for the store's lifetime


def _bound_env_rendezvous(url: str, timeout: timedelta = timedelta(minutes=30), **_: object) -> Iterator:
    """torch's ``env://`` rendezvous, with rank 0's store listening on MASTER_ADDR only."""
    import torch.distributed as dist

    query = dict(parse_qsl(urlparse(url).query))
    rank = int(query.get("rank", os.environ.get("RANK", "0")))
    world = int(query.get("world_size", os.environ.get("WORLD_SIZE", "1")))
    host, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
    if rank == 0:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(128)
        _LISTENERS.append(listener)
        store = dist.TCPStore(host, port, world, True, timeout, master_listen_fd=listener.fileno())
    else:
        store = dist.TCPStore(host, port, world, False, timeout)
    yield store, rank, world
    raise RuntimeError("env:// rendezvous cannot be repeated in one process")


def install_bound_rendezvous() -> None:
    """Replace this process's ``env://`` rendezvous handler (run in each Ray Train worker)."""
    import importlib

    rdzv = importlib.import_module("torch.distributed.rendezvous")  # the module (the package shadows it by a function)
    rdzv._rendezvous_handlers["env"] = _bound_env_rendezvous


class _LoopbackTorchBackend(_TorchBackend):
    def on_start(self, worker_group, backend_config) -> None:
        worker_group.execute(install_bound_rendezvous)
        super().on_start(worker_group, backend_config)


@dataclass
class LoopbackTorchConfig(TorchConfig):
    """TorchConfig (``env://`` init) whose rank-0 store binds MASTER_ADDR only."""

    @property
    def backend_cls(self):
        return _LoopbackTorchBackend

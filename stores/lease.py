"""A lease in a store, so that two runs of one survey (a nightly deployment overlapping a manual run) never
compute an observation twice.

``<store>/lease.json`` holds {owner, acquired, expires}. It is created *exclusively* (local: O_EXCL; S3:
a conditional PUT, If-None-Match: *), so of two runs that try at once exactly one gets it; the holder
renews it from a heartbeat thread every ttl/3 (ttl 2 min) and deletes it when done. The other run waits,
polling, until the lease is released, has expired, or names a process of this machine that has ended
(its holder died without releasing it, e.g. with the store unreachable: then it takes over),
and then computes only what is still not done. Every observation is written by the run that holds the
lease, and ``done`` is set last, so the store is never written by two runs at once. Limit: two runs
that find the same *expired* lease at the same instant could both take it over (S3 has no conditional
delete here); a live lease is never taken.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Callable, Optional

from stores import storage
from stores.storage import StorageOptions

LEASE = "lease.json"


class LeaseHeldError(RuntimeError):
    """Another run holds the store's lease (and did not release it within the wait)."""


@dataclass
class Lease:
    url: str
    owner: str
    ttl_s: float
    storage_options: StorageOptions = None

    @property
    def path(self) -> str:
        return storage.join(self.url, LEASE)

    def body(self) -> bytes:
        now = time.time()
        return json.dumps({"owner": self.owner, "acquired": now, "expires": now + self.ttl_s}).encode()


def new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _dead_here(owner: str) -> bool:
    """The owner ran on this machine and its process is gone (a run that failed before it could release)."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def read(url: str, storage_options: StorageOptions = None) -> Optional[dict]:
    raw = storage.read_bytes(storage.join(url, LEASE), storage_options)
    try:
        return json.loads(raw) if raw else None
    except ValueError:  # a torn write: treat as expired
        return {"owner": "?", "expires": 0}


def _create_exclusive(lease: Lease) -> bool:
    fs, path = storage.filesystem(lease.path, lease.storage_options)
    if not storage.is_remote(lease.path):  # a new store's folder (an object store has none to make)
        os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        with fs.open(path, "xb") as f:
            f.write(lease.body())
        return True
    except FileExistsError:
        return False
    except OSError as err:  # S3's 412 Precondition Failed arrives as an OSError subclass on some versions
        if "Precondition" in str(err) or "exists" in str(err).lower():
            return False
        raise


def acquire(url: str, ttl_s: float = 120.0, wait_s: float = 3600.0, poll_s: float = 2.0,
            storage_options: StorageOptions = None, log: Callable[[str], None] = print) -> Lease:
    """Take the store's lease, waiting up to ``wait_s`` for another holder to release it or let it expire."""
    lease = Lease(url, new_owner(), ttl_s, storage_options)
    deadline, told = time.monotonic() + wait_s, False
    while True:
        if _create_exclusive(lease):
            return lease
        held = read(url, storage_options)
        if held is None:
            continue  # released between our attempt and the read
        if held.get("expires", 0) < time.time() or _dead_here(held.get("owner", "")):
            log(f"{url}: taking over the lease of {held.get('owner')} (expired, or its process has ended)")
            storage.remove(lease.path, storage_options)
            continue
        if time.monotonic() > deadline:
            raise LeaseHeldError(f"{url} is being computed by another run ({held.get('owner')}, lease until "
                                 f"{time.strftime('%H:%M:%S', time.localtime(held['expires']))}); gave up after "
                                 f"{wait_s:.0f} s")
        if not told:
            log(f"{url} is being computed by another run ({held.get('owner')}); waiting for it")
            told = True
        time.sleep(poll_s)


def renew(lease: Lease) -> None:
    held = read(lease.url, lease.storage_options)
    if held is None or held.get("owner") != lease.owner:
        raise LeaseHeldError(f"{lease.url}: lost the lease to {held and held.get('owner')}")
    storage.write_bytes(lease.path, lease.body(), lease.storage_options)


def release(lease: Lease) -> None:
    held = read(lease.url, lease.storage_options)
    if held is not None and held.get("owner") == lease.owner:
        storage.remove(lease.path, lease.storage_options)


class Heartbeat:
    """Renews a lease every ttl/3 in a daemon thread while the work runs; releases it on exit."""

    def __init__(self, lease: Lease) -> None:
        self.lease, self._stop = lease, threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        while not self._stop.wait(self.lease.ttl_s / 3):
            try:
                renew(self.lease)
            except Exception:  # noqa: BLE001 - a missed beat is retried; the holder keeps working
                pass

    def __enter__(self) -> Lease:
        self._thread.start()
        return self.lease

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            release(self.lease)
        except Exception:  # noqa: BLE001 - an unreachable store must not hide the run's own error; it expires
            if exc[0] is None:
                raise

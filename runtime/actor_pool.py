"""A pool of Ray actors that survives their deaths: work is requeued, never lost or done twice.

``ray.util.ActorPool`` stops at the first dead actor, and restarting an actor needs free resources
that a shrunken cluster may not have (it then waits forever). Here each actor holds ``depth`` items (default one);
when an actor or its node dies (``RayActorError``, ``ActorUnavailableError``, ``NodeDiedError``...) the
actor is dropped and its item goes back to the queue through ``remaining(item)``, which returns what of
it is still unfinished (None: all of it is done, by the store's own flags), so an observation written
before the death is not recomputed. An error raised *by* the work (``RayTaskError``: a bad input, an
unreachable store) is not a death: it propagates. With no actor left the pool raises. With ``depth`` > 1
each actor holds that many items queued (short items: the next call is already in the actor when one
finishes); a dead actor's items all go back, and it is replaced once.

An actor that cannot *start* (its constructor raised: weights that do not load, a store it cannot open)
is not a death either: another would fail the same way. Such failures are counted, and after
``max_start_failures`` of them with no item finished in between the pool raises ``ActorStartError`` with
the constructor's error, instead of replacing the actor forever.

``actor_pool`` is the skeleton every pool of the project shares: connect to (or start) Ray, size the pool
to what the cluster can place now, start the actors, replace dead ones only where there is room, and kill
them all at the end, whatever happened.
"""

from __future__ import annotations

import logging
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Optional

import ray
from ray.exceptions import RayActorError, RayTaskError

log = logging.getLogger(__name__)


class NoActorsLeftError(RuntimeError):
    """Every actor of the pool died with work still queued."""


class ActorStartError(RuntimeError):
    """Actors of the pool cannot start: their constructor raised (the message is its error)."""


MAX_START_FAILURES = 3


def _start_failure(err: BaseException) -> bool:
    return isinstance(err, RayActorError) and bool(getattr(err, "actor_init_failed", False))


def _constructor_error(err: BaseException) -> str:
    """The constructor's own exception line out of Ray's wrapped message."""
    text = str(err)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for line in reversed(lines):
        if "Error" in line.split(":", 1)[0]:
            return line
    return lines[-1] if lines else type(err).__name__


def _is_death(err: BaseException) -> bool:
    if isinstance(err, RayTaskError):  # the work itself failed: not a death
        return False
    names = {"ActorUnavailableError", "NodeDiedError", "WorkerCrashedError", "ObjectLostError",
             "OwnerDiedError", "ActorDiedError"}
    return isinstance(err, RayActorError) or type(err).__name__ in names


def has_room(cpus: float, gpu: bool) -> bool:
    """Whether the cluster has free resources for one more actor now (a lost node's CPUs are gone, and a
    replacement asked for where there is no room would wait forever)."""
    free = ray.available_resources()
    return free.get("GPU", 0) >= 1 if gpu else free.get("CPU", 0) >= cpus


def run_pool(actors: list, items: Iterable[Any], submit: Callable[[Any, Any], "ray.ObjectRef"],
             remaining: Callable[[Any], Optional[Any]] = lambda item: item,
             respawn: Callable[[], Optional[Any]] = lambda: None,
             max_start_failures: int = MAX_START_FAILURES, depth: int = 1) -> Iterator[Any]:
    """Yield each item's result as it finishes (any order), over ``actors``, each holding at most ``depth``
    items (an actor runs its calls one after another, so the next one waits in the actor, not the driver);
    ``submit(actor, item)`` starts one. A dead actor is dropped once, and every item it held is requeued
    through ``remaining``; ``respawn()`` may return a replacement (a new actor where the cluster has room
    for one now, else None). ``max_start_failures`` constructor failures in a row raise ActorStartError."""
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    queue, running = deque(items), {}  # running: ref -> (actor, item)
    free = [a for _ in range(depth) for a in actors]  # one entry per open slot, round robin
    dead: set = set()
    start_failures = 0
    while queue or running:
        while free and queue:
            actor, item = free.pop(0), queue.popleft()
            running[submit(actor, item)] = (actor, item)
        if not running:
            raise NoActorsLeftError(f"every actor died; {len(queue)} item(s) of work left")
        ready, _ = ray.wait(list(running), num_returns=1)
        actor, item = running.pop(ready[0])
        try:
            result = ray.get(ready[0])
        except Exception as err:  # noqa: BLE001 - classified below
            if not _is_death(err):
                raise
            rest = remaining(item)
            if rest is not None:
                queue.append(rest)
            if id(actor) in dead:  # another of its items: requeued, the actor already handled
                continue
            dead.add(id(actor))
            free = [a for a in free if a is not actor]
            if _start_failure(err):
                start_failures += 1
                if start_failures >= max_start_failures:
                    raise ActorStartError(f"actors cannot start ({start_failures} tries): "
                                          f"{_constructor_error(err)}") from None
            log.warning("an actor died (%s: %s); its work goes back to the queue", type(err).__name__, err)
            new = respawn()
            if new is not None:
                actors.append(new)  # the caller kills what it passed in, replacements included
                free.extend([new] * depth)
            continue
        start_failures = 0
        free.append(actor)
        yield result


@dataclass
class Pool:
    """Actors of one class started by ``actor_pool``; ``gpu``: whether each holds a GPU."""

    actors: list
    gpu: bool
    respawn: Callable[[], Optional[Any]]

    def run(self, items: Iterable[Any], submit: Callable[[Any, Any], "ray.ObjectRef"],
            remaining: Callable[[Any], Optional[Any]] = lambda item: item, depth: int = 1) -> Iterator[Any]:
        """``run_pool`` over these actors, with this pool's respawn rule; ``depth`` items queued on each."""
        return run_pool(self.actors, items, submit, remaining, self.respawn, depth=depth)


@contextmanager
def actor_pool(actor_class: Any, args: tuple, n_items: int, *, num_actors: Optional[int], cpus_per_actor: int,
               use_gpu: Optional[bool], what: str, ray_address: Optional[str] = None) -> Iterator[Pool]:
    """At most ``n_items`` actors ``actor_class.remote(*args)`` (a ``ray.remote`` class), one GPU each where the
    cluster has GPUs (``use_gpu`` None: if any), else ``cpus_per_actor`` CPUs; as many as ``num_actors`` or
    the cluster's free resources allow (``plan_workers``, which names ``what`` when it cannot place them).
    Every actor, replacements included, is killed on exit."""
    from runtime.ray_cluster import ensure_ray, plan_workers

    ensure_ray(ray_address)
    n, gpu = plan_workers(num_actors, cpus_per_actor, use_gpu, what)

    def new_actor():
        return actor_class.options(num_cpus=cpus_per_actor, num_gpus=1 if gpu else 0).remote(*args)

    def respawn():  # a replacement only where the cluster has room for it now
        return new_actor() if has_room(cpus_per_actor, gpu) else None

    pool = Pool([new_actor() for _ in range(min(n, max(n_items, 1)))], gpu, respawn)
    try:
        yield pool
    finally:
        for actor in pool.actors:
            ray.kill(actor)

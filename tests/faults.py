"""Fault injection for tests, outside production signatures: a Reconstructor subclass whose run
fails once for a chosen observation, an Imager whose process dies on a chosen file once, and a
training loop that raises once at a chosen step.
Both are built by closures and pickled by value, so Ray ships them to its workers as they are."""

from __future__ import annotations

import functools
import os

from tasks.image_pool import Imager
from tasks.reconstruct import Reconstructor
from tasks.train_worker import train_loop_per_worker


def faulty_reconstructor(obs: int, marker: str, mode: str) -> type:
    """A Reconstructor that, the first time it sees ``obs`` (no ``marker`` file yet), either raises
    (``mode="raise"``) or kills its own process (``"exit"``)."""

    class FaultyReconstructor(Reconstructor):
        def run(self, batch):
            if obs in batch.obs and not os.path.exists(marker):
                open(marker, "w").close()
                if mode == "exit":
                    os._exit(1)
                raise RuntimeError(f"injected failure in batch {batch.obs} (test)")
            return super().run(batch)

    return FaultyReconstructor


def dying_imager(name: str, marker: str) -> type:
    """An Imager whose process exits the first time it is given a file whose path ends with ``name``."""

    class DyingImager(Imager):
        def image(self, path):
            if path.endswith(name) and not os.path.exists(marker):
                open(marker, "w").close()
                os._exit(1)
            return super().image(path)

    return DyingImager


def _faulty_loop(loop_config: dict, *, step: int, marker: str) -> None:
    import tasks.train_worker as tw

    real = tw.training_batch

    def batch(data, cfg, s, generator):
        if s == step and not os.path.exists(marker):
            open(marker, "w").close()
            raise RuntimeError(f"injected fault at step {s} (test)")
        return real(data, cfg, s, generator)

    tw.training_batch = batch
    try:
        train_loop_per_worker(loop_config)
    finally:
        tw.training_batch = real


def faulty_train_loop(step: int, marker: str):
    """``train_loop_per_worker`` that raises once at ``step`` (while no ``marker`` file exists)."""
    return functools.partial(_faulty_loop, step=step, marker=marker)

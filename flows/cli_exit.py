"""How ``radio-ddrm`` ends: its version, and SIGTERM raised in the main thread like Ctrl-C, so that both
unwind the same way and end with one line and a documented exit code."""

from __future__ import annotations

import signal
import threading

EXIT_INTERRUPTED = 130  # Ctrl-C (SIGINT), as shells report 128 + 2
EXIT_TERMINATED = 143  # SIGTERM (128 + 15): a scheduler or `kill` stopping the run


class Terminated(BaseException):
    """SIGTERM, raised in the main thread like KeyboardInterrupt, so that the same unwinding runs."""


def _on_sigterm(signum, frame) -> None:
    raise Terminated()


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("radio-ddrm")
    except PackageNotFoundError:
        import ddrm

        return ddrm.__version__


def install_sigterm() -> None:
    """SIGTERM raises ``Terminated`` in the main thread (elsewhere signals cannot be set: nothing is done)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)

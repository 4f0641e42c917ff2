"""glibc malloc settings for torch on CPUs.

glibc serves every block above its mmap threshold (dynamic, capped at 32 MiB on 64-bit) with a fresh ``mmap``
and returns it with ``munmap`` on free, so each network evaluation page-faults and zeroes its activations
again (measured by ``benchmarks/allocator_cost.py``). ``keep_freed_memory`` serves those blocks from the heap
and keeps freed memory for the next evaluation: the effect of ``MALLOC_MMAP_THRESHOLD_`` & co., set from
inside the process (``mallopt``), so that it holds for every process that images, whoever started it.
"""

from __future__ import annotations

import ctypes
import os
import platform

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3  # mallopt's parameters (glibc's malloc.h)
SETTINGS = {
    M_MMAP_THRESHOLD: 32 << 20,  # the dynamic threshold's cap on 64-bit: blocks under it come from the heap
    M_TRIM_THRESHOLD: 1 << 30,  # free memory at the heap's top returned to the system above 1 GiB only
    M_TOP_PAD: 64 << 20,  # the heap grows 64 MiB at a time
}
USER_SETTINGS = ("GLIBC_TUNABLES", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")
DISABLE = "RADIO_DDRM_SYSTEM_MALLOC"  # set to 1: leave glibc's defaults


def on_glibc() -> bool:
    """Whether this process runs on Linux with glibc (where ``mallopt`` and these settings exist)."""
    return platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def keep_freed_memory() -> bool:
    """Apply ``SETTINGS`` to this process's glibc malloc; True where applied.

    Not applied (False): off glibc (musl, macOS, Windows), where the user set any of ``USER_SETTINGS``
    (theirs win), or where ``RADIO_DDRM_SYSTEM_MALLOC=1``. Idempotent; changes no number, only where
    memory comes from. The cost: up to 1 GiB of freed memory stays with the process."""
    if os.environ.get(DISABLE) == "1" or any(k in os.environ for k in USER_SETTINGS):
        return False
    if not on_glibc():
        return False
    mallopt = ctypes.CDLL(None).mallopt
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return all(mallopt(param, value) == 1 for param, value in SETTINGS.items())

"""runtime.allocator: freed tensors stay in the heap (no page faults per evaluation), the user's malloc
settings win, and the switch turns it off. Each case in its own process: mallopt changes the process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.allocator import DISABLE, USER_SETTINGS, on_glibc

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not on_glibc(), reason="mallopt is glibc's")

SCRIPT = """
import resource, torch
from runtime.allocator import keep_freed_memory
applied = keep_freed_memory()
x = torch.ones(1, 16, 600, 600)  # 23 MB activations: glibc maps and unmaps each by default
conv = torch.nn.Conv2d(16, 16, 3, padding=1)
with torch.no_grad():
    for _ in range(2):  # warm-up: the heap grows towards the evaluation's size
        y = torch.relu(conv(x)) + x
    for _ in range(8):  # the page faults of each evaluation
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        y = torch.relu(conv(x)) + x
        print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0, end=" ")
print(applied)
"""


def _run(**env: str) -> tuple[bool, list[int]]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", *USER_SETTINGS, DISABLE))}
    out = subprocess.run([sys.executable, "-c", SCRIPT], env={**base, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
                                                             **env}, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    *faults, applied = out.stdout.split()
    return applied == "True", [int(f) for f in faults]


def test_kept_memory_removes_the_page_faults_of_repeated_evaluations_and_yields_to_the_user():
    applied, kept = _run()
    off, system = _run(**{DISABLE: "1"})
    users, theirs = _run(MALLOC_ARENA_MAX="2", MALLOC_TOP_PAD_="0")
    assert applied and not off and not users
    # 8 evaluations x (conv + relu + add) of 23 MB (5,600 pages) each. By default they fault their pages again
    # in most evaluations, as many as glibc's dynamic mmap threshold lets it (it settles differently run to run:
    # 16,800-101,000 faults in all on one CPU). Kept: the heap grows once more
    # at most (by up to two tensors' pages, in one evaluation), then every evaluation reuses it.
    faulting = sum(f > 100 for f in kept)
    assert faulting <= 1 and sum(kept) <= 2 * 5_700, (kept, system)
    assert sum(system) > 2 * 5_600, (kept, system)
    assert sum(theirs) > 8 * 5_600, theirs  # the user's own setting is left as it is

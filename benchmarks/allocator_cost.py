"""What glibc's default allocator costs the shipped prior's U-Net on a CPU, and what
``runtime.allocator.keep_freed_memory`` saves: milliseconds per image at N = 150 and batch 8 (the
image actors' batch), its kernel (sys) seconds and minor page faults, with the default malloc
(``RADIO_DDRM_SYSTEM_MALLOC=1``) and with freed memory kept. Each variant in its own process (mallopt
changes a process for good), run default, kept, kept, default so that the machine's drift cancels;
2 threads, no_grad, 12 evaluations after a warm-up.

    python -m benchmarks.allocator_cost

Last line: ``ms_per_image_system=<x> ms_per_image_kept=<x> speedup=<system / kept>``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from runtime.allocator import DISABLE, USER_SETTINGS

ROOT = Path(__file__).resolve().parents[1]
N, BATCH, REPEATS = 150, 8, 12

CHILD = f"""
import json, resource, time, torch
from runtime.allocator import keep_freed_memory
from stores.checkpoints import load_prior
applied = keep_freed_memory()
torch.set_num_threads(2)
model = load_prior("first", torch.device("cpu")).model
x, t = torch.randn({BATCH}, 1, {N}, {N}, generator=torch.Generator().manual_seed(0)), torch.full(({BATCH},), 500)
with torch.no_grad():
    model(x, t)
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for _ in range({REPEATS}):
        model(x, t)
    dt, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({{"applied": applied, "ms": 1000 * dt / {REPEATS} / {BATCH}, "sys": r1.ru_stime - r0.ru_stime,
                  "faults": (r1.ru_minflt - r0.ru_minflt) / {REPEATS}}}))
"""


def measure(system: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", *USER_SETTINGS))}
    env.update({"PYTHONPATH": str(ROOT), DISABLE: "1" if system else "0"})
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    runs = {True: [], False: []}
    for system in (True, False, False, True):
        r = measure(system)
        runs[system].append(r)
        print(f"{'default malloc' if system else 'kept memory   '}: {r['ms']:.1f} ms per image, "
              f"{r['sys']:.2f} s in the kernel over {REPEATS} evaluations, {r['faults']:.0f} minor faults each")
    ms = {k: sum(r["ms"] for r in v) / len(v) for k, v in runs.items()}
    print(f"ms_per_image_system={ms[True]:.1f} ms_per_image_kept={ms[False]:.1f} speedup={ms[True] / ms[False]:.2f}")


if __name__ == "__main__":
    main()

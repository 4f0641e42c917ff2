"""Time coverage + gridding + operator construction per preset at N = 150.

Built once per array and reused across observations; goal: under 1 s each on a 2-core CPU.
The first call pays astropy's one-off start-up (IERS tables), timed separately.
Last line: ``uv_build_seconds_max=<x.xxx>``.
"""

from __future__ import annotations

import time

from ddrm.radio import observe_array

N, REPEATS = 150, 3


def main() -> None:
    t0 = time.perf_counter()
    observe_array("eht", 16)
    print(f"one-off astropy start-up: {time.perf_counter() - t0:.3f} s")
    worst = 0.0
    for name in ("vla", "eht", "alma"):
        best = float("inf")
        for _ in range(REPEATS):
            t0 = time.perf_counter()
            ao = observe_array(name, N)
            best = min(best, time.perf_counter() - t0)
        worst = max(worst, best)
        print(f"{name}: {best:.3f} s  ({len(ao.coverage.uvw)} samples, {ao.gridded.fraction_sampled:.1%} of cells)")
    print(f"uv_build_seconds_max={worst:.3f}")


if __name__ == "__main__":
    main()

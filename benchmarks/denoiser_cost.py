"""Milliseconds per image per network evaluation of the shipped FIRST prior's U-Net at N = 150,
at batch 1, 8 and 32: on a CPU larger batches can be slower per image, so the CPU
actors' batch size follows this measurement. One process, 2 threads, no_grad, median of 5.

Last line: ``ms_per_image_b1=<x> ms_per_image_b8=<x> ms_per_image_b32=<x>``.
"""

from __future__ import annotations

import statistics
import time

import torch

from stores.checkpoints import load_prior

N, BATCHES, REPEATS = 150, (1, 8, 32), 5


def main() -> None:
    torch.set_num_threads(2)
    prior = load_prior("first", torch.device("cpu"))
    denoiser = prior
    out = {}
    for b in BATCHES:
        x, t = torch.randn(b, 1, N, N), torch.full((b,), 500)
        denoiser(x, t)  # warm-up
        times = []
        for _ in range(REPEATS):
            t0 = time.perf_counter()
            denoiser(x, t)
            times.append(time.perf_counter() - t0)
        out[b] = 1000 * statistics.median(times) / b
        print(f"batch {b}: {out[b]:.1f} ms per image per evaluation")
    print(" ".join(f"ms_per_image_b{b}={out[b]:.1f}" for b in BATCHES))


if __name__ == "__main__":
    main()

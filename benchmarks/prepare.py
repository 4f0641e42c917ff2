"""Synthetic generation + writing throughput of the ``prepare_dataset`` flow, local store.

Each figure is the whole flow (plan, parallel shard tasks, validation, atomic publish, preview
artifact) on a warm Prefect server, divided into the image count; the generator alone is printed
beside it. Goal: >= 1000 images/s at N=64 on a 2-core CPU.
Last line: ``prepare_images_per_s_n64=<x> prepare_images_per_s_n150=<x>``.
"""

from __future__ import annotations

import tempfile
import time

import torch

from configs import prepare_preset
from ddrm.diffusion.galaxies import synth_galaxies
from flows.prepare import prepare_dataset
from runtime.environment import configure_local_environment

CASES = {64: prepare_preset("demo", name="bench64", N=64, n_images=8192, shard_size=1024),
         150: prepare_preset("demo", name="bench150", N=150, n_images=2048, shard_size=256, chunk_images=32)}


def main() -> None:
    configure_local_environment()
    rates = {}
    with tempfile.TemporaryDirectory() as root:
        prepare_dataset(prepare_preset("demo", name="warmup", N=16, n_images=64, shard_size=64), root=root)
        for N, cfg in CASES.items():
            t0 = time.perf_counter()
            synth_galaxies(cfg.shard_size, N, cfg.galaxy, torch.Generator().manual_seed(0))
            gen = cfg.shard_size / (time.perf_counter() - t0)
            t0 = time.perf_counter()
            prepare_dataset(cfg, root=root)
            rates[N] = cfg.n_images / (time.perf_counter() - t0)
            print(f"N={N}: flow {rates[N]:.0f} images/s for {cfg.n_images} images "
                  f"(generator alone, one thread pool: {gen:.0f} images/s)")
    print(f"prepare_images_per_s_n64={rates[64]:.0f} prepare_images_per_s_n150={rates[150]:.0f}")


if __name__ == "__main__":
    main()

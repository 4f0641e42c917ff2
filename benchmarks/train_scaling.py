"""Ray Train throughput of the demo prior (tiny U-Net, N=64, batch 16 per worker): 1 vs 2 workers,
one thread each, on the same warm local Ray. Goal: scaling >= 1.5 on a 2-core CPU.

Samples/s is the median over report windows after the first (start-up excluded), all workers
together. Also prints each run's peak worker memory (max RSS).
Last line: ``train_samples_per_s_1w=<x> train_samples_per_s_2w=<x> scaling=<x.xx>``.
"""

from __future__ import annotations

import statistics
import tempfile
from dataclasses import replace

from flows.prepare import prepare_dataset
from flows.train import train_prior
from configs import prepare_preset, train_preset
from runtime.ray_cluster import ensure_ray
from runtime.environment import configure_local_environment
from tasks.train import read_history

STEPS = 60


def main() -> None:
    configure_local_environment()
    ensure_ray(num_cpus=2)
    rates = {}
    with tempfile.TemporaryDirectory() as root:
        dataset = prepare_dataset(prepare_preset("demo"), root=root)
        for workers in (1, 2):
            cfg = train_preset("demo", name=f"bench-{workers}w", num_workers=workers, cpus_per_worker=1,
                               report_every=10, checkpoint_every=STEPS,
                               optim=replace(train_preset("demo").optim, steps=STEPS))
            checkpoint = train_prior(dataset, cfg, root=root)
            history = read_history(checkpoint.rsplit("/", 1)[0])
            rates[workers] = statistics.median(r["samples_per_s"] for r in history[1:])
            peak = max(r["peak_rss_mb"] for r in history)
            print(f"{workers} worker(s): {rates[workers]:.1f} samples/s, peak worker memory {peak:.0f} MB "
                  f"(rank 0 max RSS), final loss {history[-1]['loss']:.4f}")
    print(f"train_samples_per_s_1w={rates[1]:.1f} train_samples_per_s_2w={rates[2]:.1f} "
          f"scaling={rates[2] / rates[1]:.2f}")


if __name__ == "__main__":
    main()

"""Ray Train throughput of the shipped FIRST prior's recipe (``train --preset first``) at N = 150:
1 vs 2 workers, one thread each, on the same warm local Ray. Samples/s is the median
over report windows after the first (start-up excluded), all workers together; a sample is one
training window (64, 96 or 128 px, area-scaled batches, as in the recipe).

    python benchmarks/train_first.py --dataset runs/data/first-<hash>.zarr

Last line: ``train_n150_samples_per_s_1w=<x> train_n150_samples_per_s_2w=<x> scaling=<x.xx>``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from dataclasses import replace

from configs import train_preset
from flows.train import train_prior
from runtime.environment import configure_local_environment
from runtime.ray_cluster import ensure_ray
from tasks.train import read_history

STEPS = 60


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", required=True, help="the 'first' dataset store (radio-ddrm prepare --preset first)")
    args = p.parse_args()
    configure_local_environment()
    ensure_ray(num_cpus=2)
    rates = {}
    with tempfile.TemporaryDirectory() as root:
        for workers in (1, 2):
            base = train_preset("first")
            cfg = replace(base, name=f"bench-{workers}w", num_workers=workers, cpus_per_worker=1, report_every=6,
                          checkpoint_every=STEPS, optim=replace(base.optim, steps=STEPS))
            checkpoint = train_prior(args.dataset, cfg, root=root)
            history = read_history(checkpoint.rsplit("/", 1)[0])
            rates[workers] = statistics.median(r["samples_per_s"] for r in history[1:])
            print(f"{workers} worker(s): {rates[workers]:.1f} samples/s, peak worker memory "
                  f"{max(r['peak_rss_mb'] for r in history):.0f} MB")
    print(f"train_n150_samples_per_s_1w={rates[1]:.1f} train_n150_samples_per_s_2w={rates[2]:.1f} "
          f"scaling={rates[2] / rates[1]:.2f}")


if __name__ == "__main__":
    main()

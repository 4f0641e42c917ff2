"""Imaging real visibilities (issue 13): reading + gridding seconds per million visibilities (the
shared files, repeated), end-to-end seconds per observation at N = 150, K = 20, S = 8 with the
shipped prior, and the ``image_observations`` throughput with 1 and 2 actors on a batch of files.

Last line: ``grid_s_per_mvis=<x> image_s_per_obs=<x> scaling=<x>``.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from configs.image import ImageConfig
from ddrm.interferometry.gridding import fit_pixel_scale, grid_weighted
from ddrm.interferometry.imaging import observation_from_grid
from sources.uvfits import read_uvfits

VIS = Path(__file__).resolve().parents[1] / "../shared/data/visibilities"
FILES = sorted(str(p) for p in VIS.glob("*.uvfits"))


def grid_rate(repeats: int = 20) -> float:
    n, t0 = 0, time.perf_counter()
    for _ in range(repeats):
        for f in FILES:
            v = read_uvfits(f)
            uvw = np.stack([v.u, v.v], axis=1)
            observation_from_grid(grid_weighted(uvw, v.vis, v.weight, 150, fit_pixel_scale(uvw, 150)))
            n += v.n
    return (time.perf_counter() - t0) / (n / 1e6)


def main() -> None:
    from flows.image import image_observations
    from runtime.environment import configure_local_environment
    from runtime.ray_cluster import ensure_ray
    from tasks.image import image_file

    s_per_mvis = grid_rate()
    print(f"reading + gridding: {s_per_mvis:.2f} s per million visibilities")
    cfg = ImageConfig(N=150, K=20, samples=8)
    configure_local_environment()
    with tempfile.TemporaryDirectory() as root:
        t0 = time.perf_counter()
        image_file(str(VIS / "mojave.uvfits"), cfg, root)
        per_obs = time.perf_counter() - t0
        print(f"one observation end to end (N=150, K=20, S=8, prior load included): {per_obs:.1f} s")
        batch = []
        for i in range(4):  # a batch of files: copies of the calibrated VLBA observation
            batch.append(shutil.copy(VIS / "mojave.uvfits", Path(root) / f"obs{i}.uvfits"))
        ensure_ray(num_cpus=2)
        rates = {}
        for actors in (1, 2):
            t0 = time.perf_counter()
            image_observations(batch, cfg, root=f"{root}/a{actors}", num_actors=actors)
            rates[actors] = len(batch) / (time.perf_counter() - t0)
            print(f"{actors} actor(s): {rates[actors]:.3f} observations/s")
    print(f"grid_s_per_mvis={s_per_mvis:.2f} image_s_per_obs={per_obs:.1f} scaling={rates[2] / rates[1]:.2f}")


if __name__ == "__main__":
    main()

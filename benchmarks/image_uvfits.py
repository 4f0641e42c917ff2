"""Imaging real visibilities (issue 13): reading + gridding seconds per million visibilities (a
1.01 M-row uvfits of the VLBA file's rows), the dirty image's non-uniform FFT per million, end-to-end seconds per observation at N = 150, K = 20, S = 8 with the
shipped prior, and the ``image_observations`` throughput with 1 and 2 actors on a batch of files.

Last line: ``grid_s_per_mvis=<x> image_s_per_obs=<x> scaling=<x>``.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from configs.image import ImageConfig
import numpy as np

from ddrm.interferometry.dirty import nufft_dirty, nufft_psf
from ddrm.interferometry.gridding import fit_pixel_scale, grid_weighted, visibility_imaging_weights
from ddrm.interferometry.imaging import observation_from_grid
from sources.uvfits import read_uvfits

VIS = Path(__file__).resolve().parents[1] / "../shared/data/visibilities"


def million_row_file(path: str, rep: int = 170) -> str:
    """The VLBA M87 file's rows repeated ``rep`` times (1.01 M visibilities) in one random-groups file."""
    from astropy.io import fits

    with fits.open(VIS / "mojave.uvfits") as hdul:
        d = hdul[0].data
        pars = [np.tile(np.asarray(d.par(i)), rep) for i in range(len(d.parnames))]
        data = np.tile(np.asarray(d.data), (rep,) + (1,) * (d.data.ndim - 1))
        groups = fits.GroupData(data, parnames=list(d.parnames), pardata=pars, bitpix=-32)
        fits.HDUList([fits.GroupsHDU(groups, header=hdul[0].header.copy())] + [h.copy() for h in hdul[1:]]) \
            .writeto(path, overwrite=True)
    return path


def grid_rates(path: str) -> tuple[float, float]:
    """Seconds per million visibilities at N = 150, Briggs: (reading + gridding onto the operator's grid,
    the one nearest-cell rule, with weights and σ), and (the dirty image and PSF by non-uniform FFT)."""
    cfg = ImageConfig(N=150, weighting="briggs")
    t0 = time.perf_counter()
    v = read_uvfits(path)
    uvw = np.stack([v.u, v.v], axis=1)
    grid = grid_weighted(uvw, v.vis, v.weight, cfg.N, fit_pixel_scale(uvw, cfg.N), cfg.weighting, cfg.robust)
    observation_from_grid(grid)
    t1 = time.perf_counter()
    weights = visibility_imaging_weights(uvw, v.weight, grid)
    nufft_dirty(uvw, v.vis, weights, cfg.N, grid.pixel_scale_arcsec)
    nufft_psf(uvw, weights, cfg.N, grid.pixel_scale_arcsec)
    t2 = time.perf_counter()
    return (t1 - t0) / (v.n / 1e6), (t2 - t1) / (v.n / 1e6)


def main() -> None:
    from flows.image import image_observations
    from runtime.environment import configure_local_environment
    from runtime.ray_cluster import ensure_ray
    from tasks.image import image_file

    cfg = ImageConfig(N=150, K=20, samples=8)
    configure_local_environment()
    with tempfile.TemporaryDirectory() as root:
        s_per_mvis, dirty_per_mvis = grid_rates(million_row_file(f"{root}/million.uvfits"))
        print(f"reading + gridding: {s_per_mvis:.2f} s per million visibilities (1.01 M rows of the VLBA file)")
        print(f"dirty image + PSF (non-uniform FFT, for the dirty and CLEAN products): {dirty_per_mvis:.2f} s per million")
        t0 = time.perf_counter()
        image_file(str(VIS / "mojave.uvfits"), cfg, root)
        per_obs = time.perf_counter() - t0
        print(f"one observation end to end (N=150, K=20, S=8, prior load included): {per_obs:.1f} s")
        batch = []
        for i in range(4):  # a batch of files: copies of the calibrated VLBA observation
            batch.append(str(shutil.copy(VIS / "mojave.uvfits", Path(root) / f"obs{i}.uvfits")))
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

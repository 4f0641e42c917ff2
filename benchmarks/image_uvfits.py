"""Imaging real visibilities: reading + gridding seconds per million visibilities (a 1.01 M-row uvfits of
the VLBA file's rows), ducc0's dirty image + PSF per million, end-to-end seconds per observation at N = 150,
K = 50, S = 8 with the shipped prior for both likelihoods (gridded, exact; no self-calibration) with their
raw-visibility χ² and CLEAN's, then the default (exact with phase self-calibration, as for any VLBI file),
the held-out χ² (20 % of the blocks) of the default mean and of CLEAN, and the ``image_observations``
throughput with 1 and 2 actors on two copies of the file.

Last line: ``grid_s_per_mvis=<x> image_s_per_obs=<x> exact_s_per_obs=<x> raw_chi2=<x> clean_raw_chi2=<x>
scaling=<x>`` (image_s_per_obs: the gridded mode; raw_chi2: the exact mode's posterior mean).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from configs.image import ImageConfig
from ddrm.radio.dirty import nufft_dirty, nufft_psf
from ddrm.radio.grid_problem import observation_from_grid
from ddrm.radio.gridding import fit_pixel_scale, grid_weighted, visibility_imaging_weights
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
    cfg = ImageConfig.of(N=150, weighting="briggs")
    t0 = time.perf_counter()
    v = read_uvfits(path)
    uvw = v.uv
    grid = grid_weighted(uvw, v.vis, v.weight, cfg.N, fit_pixel_scale(uvw, cfg.N), cfg.grid.weighting, cfg.grid.robust)
    observation_from_grid(grid)
    t1 = time.perf_counter()
    weights = visibility_imaging_weights(uvw, v.weight, grid)
    nufft_dirty(uvw, v.vis, weights, cfg.N, grid.pixel_scale_arcsec)
    nufft_psf(uvw, weights, cfg.N, grid.pixel_scale_arcsec)
    t2 = time.perf_counter()
    return (t1 - t0) / (v.n / 1e6), (t2 - t1) / (v.n / 1e6)


def one_file(cfg: ImageConfig, root: str) -> tuple[float, dict]:
    from imager.file import image_file

    t0 = time.perf_counter()
    product = image_file(str(VIS / "mojave.uvfits"), cfg, root).product
    return time.perf_counter() - t0, product


def main() -> None:
    from flows.image import image_observations
    from runtime.environment import configure_local_environment
    from runtime.ray_cluster import ensure_ray

    configure_local_environment()
    with tempfile.TemporaryDirectory() as root:
        s_per_mvis, dirty_per_mvis = grid_rates(million_row_file(f"{root}/million.uvfits"))
        print(f"reading + gridding: {s_per_mvis:.2f} s per million visibilities (1.01 M rows of the VLBA file)")
        print(f"dirty image + PSF (ducc0 wgridder, for the dirty and CLEAN products): {dirty_per_mvis:.2f} s per million")
        seconds, summaries = {}, {}
        for mode in ("gridded", "exact", "default"):  # the two likelihoods alone, then what a user runs (VLBI: phase selfcal)
            cfg = ImageConfig.of(N=150, K=50, samples=8) if mode == "default" else \
                ImageConfig.of(N=150, K=50, samples=8, likelihood=mode, selfcal="none")
            seconds[mode], summaries[mode] = one_file(cfg, root)
            fit, post = summaries[mode].fit, summaries[mode].posterior
            print(f"{mode}: {seconds[mode]:.1f} s per observation (N=150, K=50, S=8); raw χ² of the mean "
                  f"{fit.chi2_raw_visibilities:.3f} (samples {fit.chi2_samples_mean:.3f} ± {fit.chi2_samples_std:.3f}), "
                  f"CLEAN components {fit.chi2_clean_components:.3f}; total flux {post.total_flux_jy:.3f} Jy "
                  f"(CLEAN {post.total_flux_clean_jy:.3f})")
        _, held = one_file(ImageConfig.of(N=150, K=50, samples=8, holdout=0.2), root)
        chi2 = held.fit.holdout.chi2
        print(f"held-out χ² (20 % of the baseline x scan blocks): exact mean {chi2['mean']:.3f}, "
              f"CLEAN {chi2['clean']:.3f}, zero image {chi2['zero']:.1f}")
        batch = [str(shutil.copy(VIS / "mojave.uvfits", Path(root) / f"obs{i}.uvfits")) for i in range(2)]
        ensure_ray(num_cpus=2)
        rates, cfg = {}, ImageConfig.of(N=150, K=20, samples=8)
        for actors in (1, 2):
            t0 = time.perf_counter()
            image_observations(batch, cfg, root=f"{root}/a{actors}", num_actors=actors)
            rates[actors] = len(batch) / (time.perf_counter() - t0)
            print(f"{actors} actor(s): {rates[actors]:.3f} observations/s (K=20)")
    exact = summaries["exact"].fit
    print(f"exact / gridded: {seconds['exact'] / seconds['gridded']:.2f}; the default (auto: data term and "
          f"self-calibration from the data) {seconds['default']:.1f} s, raw χ² "
          f"{summaries['default'].fit.chi2_raw_visibilities:.3f}")
    print(f"grid_s_per_mvis={s_per_mvis:.2f} image_s_per_obs={seconds['gridded']:.1f} "
          f"exact_s_per_obs={seconds['exact']:.1f} raw_chi2={exact.chi2_raw_visibilities:.3f} "
          f"clean_raw_chi2={exact.chi2_clean_components:.3f} scaling={rates[2] / rates[1]:.2f}")


if __name__ == "__main__":
    main()

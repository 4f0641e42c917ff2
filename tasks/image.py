"""Imaging real observations: a visibility file in, FITS (posterior mean and std, dirty, CLEAN), a PNG
panel and a JSON summary out, under ``<root>/images/<file stem>/`` (never beside the input).

``image_file`` is the whole path for one file; the ``image_observations`` flow fans it out.
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any, Optional

import numpy as np
import torch

from configs.image import ImageConfig
from ddrm.ddpm import EpsDenoiser
from ddrm.interferometry.dirty import nufft_dirty, nufft_psf
from ddrm.interferometry.gridding import fit_pixel_scale, grid_weighted, visibility_imaging_weights, \
    zero_spacing_amplitudes
from ddrm.interferometry.imaging import ImagingResult, image_observation, observation_from_grid
from ddrm.sampling import make_generators
from ddrm.seeding import derive_seed
from reporting.plots import gallery_png
from sources.measurement_set import read_visibilities
from sources.uvfits import Visibilities, VisibilityFileError
from stores import storage
from stores.checkpoints import load_prior
from stores.fits_io import beam_cards, cube_header, multi_extension_fits
from stores.storage import StorageOptions

SUMMARY = "summary.json"


def output_dir(root: str, path: str) -> str:
    stem = os.path.basename(path.rstrip("/")).split(".")[0] or "observation"
    return storage.join(storage.normalise_url(root), "images", stem)


def grid_file(vis: Visibilities, cfg: ImageConfig):
    """The file gridded for the operator (nearest cell), its pixel scale (arcsec), and (dirty, PSF) imaged
    from the visibilities themselves at the same weighting (non-uniform FFT)."""
    uvw = np.stack([vis.u, vis.v], axis=1)
    scale = cfg.pixel_scale_arcsec or fit_pixel_scale(uvw, cfg.N, cfg.fit_fraction)
    grid = grid_weighted(uvw, vis.vis, vis.weight, cfg.N, scale, cfg.weighting, cfg.robust)
    if grid.n_on == 0:
        raise VisibilityFileError(f"{os.path.basename(vis.path)}: no visibility falls on a {cfg.N}x{cfg.N} grid at "
                         f"{scale:.4g} arcsec/pixel")
    weights = visibility_imaging_weights(uvw, vis.weight, grid)
    values = zero_spacing_amplitudes(uvw, vis.vis, cfg.N, scale)
    dirty = nufft_dirty(uvw, values, weights, cfg.N, scale), nufft_psf(uvw, weights, cfg.N, scale)
    return observation_from_grid(grid), scale, dirty


def write_products(vis: Visibilities, r: ImagingResult, scale: float, cfg: ImageConfig, out: str,
                   storage_options: StorageOptions) -> dict[str, str]:
    header = cube_header(cfg.N, vis.ra_deg, vis.dec_deg, scale, vis.ref_freq_hz, vis.date_obs)
    major, minor = r.beam.fwhm_pixels
    beam = beam_cards(major, minor, r.beam.position_angle_deg, scale)
    cards = {"TELESCOP": vis.telescope, "OBJECT": vis.source, "DDRM_K": cfg.K, "SAMPLES": cfg.samples,
             "FLUXSCL": r.flux_scale, "WEIGHTNG": cfg.weighting}
    products = {"mean": (r.mean.numpy(), "JY/PIXEL", None), "std": (r.std.numpy(), "JY/PIXEL", None),
                "dirty": (r.dirty.numpy(), "JY/BEAM", beam), "clean": (r.clean.numpy(), "JY/BEAM", beam)}
    fits_url = storage.join(out, "image.fits")
    storage.write_bytes(fits_url, multi_extension_fits(products, header, cards), storage_options)
    png = gallery_png([[r.dirty.numpy() / max(float(r.dirty.max()), 1e-30), r.clean_per_pixel.numpy() /
                        max(float(r.clean_per_pixel.max()), 1e-30), r.mean.numpy() / r.flux_scale,
                        r.std.numpy()]], [vis.source or os.path.basename(vis.path)],
                      ["dirty", "CLEAN", "DDRM mean", "posterior std"])
    png_url = storage.join(out, "panel.png")
    storage.write_bytes(png_url, png, storage_options)
    return {"fits": fits_url, "png": png_url}


def image_file(path: str, cfg: ImageConfig, root: str = "runs", storage_options: StorageOptions = None,
               prior: Optional[Any] = None, out: Optional[str] = None, source: Optional[str] = None) -> dict[str, Any]:
    """Image one local file (``source``: its original URL, for the record); returns and writes its summary
    under ``out`` (default ``<root>/images/<stem>``), summary.json last. Errors name the file."""
    t0 = time.perf_counter()
    vis = read_visibilities(path)
    obs, scale, dirty = grid_file(vis, cfg)
    prior = prior or load_prior(cfg.prior, torch.device("cpu"))
    denoiser = EpsDenoiser(prior.model, prior.schedule)
    gens = make_generators([derive_seed(cfg.seed, "image", os.path.basename(path))])
    try:
        r = image_observation(obs, denoiser, prior.schedule, cfg.sampler, gens, K=cfg.K, S=cfg.samples,
                              noise=cfg.noise, clean=cfg.clean, dirty=dirty)
    except ValueError as err:
        raise VisibilityFileError(f"{os.path.basename(path)}: {err}") from None
    out = out or output_dir(root, path)
    files = write_products(vis, r, scale, cfg, out, storage_options)
    summary = {"file": source or path, "source": vis.source, "telescope": vis.telescope, "date_obs": vis.date_obs,
               "ra_deg": vis.ra_deg, "dec_deg": vis.dec_deg, "ref_freq_hz": vis.ref_freq_hz, "stokes_from": vis.stokes_from,
               "n_vis": vis.n, "n_flagged": vis.n_flagged, "n_on_grid": obs.grid.n_on, "n_off_grid": obs.grid.n_off,
               "N": cfg.N, "pixel_scale_arcsec": scale, "weighting": cfg.weighting, "robust": cfg.robust,
               "sigma_jy_weights": obs.sigma_weights, "sigma_jy_scatter": obs.sigma_scatter, "noise_used": cfg.noise,
               "flux_scale_jy_per_pixel": r.flux_scale, "flux_scale_initial": r.flux_scale_initial,
               "sigma_y_model": r.sigma_y, "chi2_per_coordinate": r.chi2, "total_flux_jy": r.total_flux,
               "total_flux_clean_jy": r.total_flux_clean, "sampler": cfg.sampler.to_dict(), "K": cfg.K,
               "samples": cfg.samples, "seconds_sampling": r.seconds, "seconds": time.perf_counter() - t0, **files}
    summary = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in summary.items()}
    storage.write_bytes(storage.join(out, SUMMARY), json.dumps(summary, indent=2).encode(), storage_options)
    return summary


# ---- fan-out over Ray actors (the ``image_observations`` flow) -------------------------------------

def expand_files(files, storage_options: StorageOptions = None) -> list[str]:
    """A list of paths/URLs and globs (local or s3://) -> the matching files, sorted, duplicates dropped."""
    out: list[str] = []
    for pattern in [files] if isinstance(files, str) else list(files):
        if any(ch in pattern for ch in "*?["):
            fs, path = storage.filesystem(pattern, storage_options)
            prefix = pattern.split("://", 1)[0] + "://" if storage.is_remote(pattern) else ""
            out += [prefix + p for p in sorted(fs.glob(path))]
        else:
            out.append(pattern)
    return list(dict.fromkeys(out))


def is_done(root: str, path: str, storage_options: StorageOptions = None) -> bool:
    """A file is done when its summary.json exists (written last, after the FITS and PNG)."""
    return storage.read_bytes(storage.join(output_dir(root, path), SUMMARY), storage_options) is not None


def local_copy(path: str, storage_options: StorageOptions, directory: str) -> str:
    """The file itself if local, else a copy in ``directory`` (astropy and casacore read local files; a
    Measurement Set is a folder, copied whole)."""
    if not storage.is_remote(path):
        return path
    fs, remote = storage.filesystem(path, storage_options)
    local = os.path.join(directory, os.path.basename(path.rstrip("/")))
    if fs.isdir(remote):
        fs.get(remote.rstrip("/") + "/", local, recursive=True)
        return local
    with open(local, "wb") as f:
        f.write(storage.read_bytes(path, storage_options) or b"")
    return local


class Imager:
    """Loads the prior once; images files on request (one operator per file, built here)."""

    def __init__(self, cfg: ImageConfig, root: str, storage_options: StorageOptions, threads: int) -> None:
        torch.set_num_threads(threads)
        self.cfg, self.root, self.storage_options = cfg, root, storage_options
        self.prior = load_prior(cfg.prior, torch.device("cpu"))

    def image(self, path: str) -> dict[str, Any]:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            try:
                local = local_copy(path, self.storage_options, tmp)
                summary = image_file(local, self.cfg, self.root, self.storage_options, self.prior,
                                     out=output_dir(self.root, path), source=path)
            except (VisibilityFileError, FileNotFoundError) as err:
                return {"file": path, "error": str(err)}
        return summary

"""Imaging real observations: a visibility file in, FITS (posterior mean and std, dirty, CLEAN), a PNG
panel and a JSON summary out, never beside the input:

    <root>/images/<run key>/<file name>-<hash of its URL>/{image.fits, panel.png, summary.json}
    <root>/images/<run key>/run.json     the settings, and the files imaged, reused and skipped

The run key (``image-<hash>``) is a hash of every setting that changes a product (N, pixel scale or field ladder,
weighting and robust, noise source, sampler config, K, S, seed, CLEAN config, the self-calibration's internal
settings, the algorithm's version ``ddrm.radio.imaging.IMAGING_ALGORITHM``, the prior and the SHA256 of its
weights), so other settings write to another folder and never overwrite or reuse these. Each file's
folder carries its full name and a hash of its URL, so ``a.b.uvfits`` and ``a.c.uvfits``, or ``d1/obs.uvfits``
and ``d2/obs.uvfits``, never share one. A result is reused only when its summary names this run key and the
SHA256 of the same input bytes and every product it lists is there with its recorded SHA256
(``stores.products``); otherwise the folder's old result is removed before anything new is written, and the
input is imaged again in place. Products are rendered first and written whole, summary.json last: a folder
holds a whole result or none. The random seed comes from ``seed`` and the SHA256 of the input's bytes, so the
same bytes under two names give the same images.

``image_or_skip`` is the one per-file rule of both modes (in this process, or on Ray actors): any failure of
a file becomes a named skip ({"file", "error"}); what is not the file's fault (outputs that cannot be
written, a pixel scale the data cannot support, an interrupt) stops the run.

``image_file`` is the whole path for one file; the ``image_observations`` flow fans it out.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from typing import Any, Optional

import torch

from configs import stable_hash
from configs.image import ImageConfig, ImagingSettingsError
from ddrm.radio.crossval import holdout_mask
from ddrm.radio.dirty import nufft_dirty
from ddrm.radio.gains import solution_intervals
from ddrm.radio.imaging import IMAGING_ALGORITHM
from ddrm.seeding import derive_seed
from imaging.predictive import predictive_summary, structure_maps
from imaging.quality import (brightness_range, gains_csv, holdout_chi2, multiscale_components, multiscale_fit, raw_fit,
                             sampling_error, selfcal_summary)
from imaging.scale import chosen_field, gain_evidence, image_at_best_scale
from imaging.terms import data_term, imager
from reporting.image_products import people_figures, product_name, render_products, sky_images
from reporting.progress import StageBar
from sources.fits_bounds import available_memory
from sources.measurement_set import read_visibilities
from sources.uvfits import VisibilityFileError
from stores import products, storage
from stores.checkpoints import Prior, load_prior
from stores.fits_products import Provenance
from stores.inputs import local_copy
from stores.jsonio import dumps, finite, rounded
from stores.products import SUMMARY, ProductWriteError  # noqa: F401 (SUMMARY: the pool reads it from here)
from stores.storage import StorageOptions

RUN = "run.json"
SUMMARY_DIGITS = 6  # significant digits of summary.json's numbers, except those that locate or scale the image:
EXACT_KEYS = frozenset({"ra_deg", "dec_deg", "pixel_scale_arcsec", "ref_freq_hz"})
BYTES_PER_PIXEL_CHANNEL = 100  # the denoiser's peak memory per sample, pixel and U-Net base channel (measured:
#                                1.0-1.7 kB per sample-pixel at base 16, N 128-256, S 4-16, no_grad on CPU)


def run_key(cfg: ImageConfig, prior: Prior) -> str:
    """``image-<hash>`` of every setting that changes the products, the prior's weights included."""
    return f"image-{stable_hash(run_settings(cfg, prior), 10)}"


def run_settings(cfg: ImageConfig, prior: Prior) -> dict[str, Any]:
    """The config's JSON (``ImageConfig.to_dict``, less ``strict``, which changes no product), the algorithm's
    version and the prior's SHA256."""
    settings = {k: v for k, v in cfg.to_dict().items() if k != "strict"}
    return {**settings, "algorithm": IMAGING_ALGORITHM, "prior_sha256": prior.sha256}


def file_label(path: str) -> str:
    """A file's folder name: its full name and a hash of its URL (distinct for distinct inputs, stable)."""
    name = os.path.basename(path.rstrip("/")) or "observation"
    return f"{name}-{stable_hash(storage.normalise_url(path), 8)}"


def output_dir(root: str, key: str, path: str) -> str:
    return storage.join(storage.normalise_url(root), "images", key, file_label(path))


def finished(root: str, key: str, path: str, input_sha256: str,
             storage_options: StorageOptions = None) -> Optional[dict[str, Any]]:
    """The summary of a finished result of this run key for exactly these input bytes, every product it lists
    present with its recorded SHA256 (``stores.products.verified``), else None."""
    out = output_dir(root, key, path)
    summary = products.read_summary(out, storage_options)
    if summary and summary.get("run_key") == key and summary.get("input_sha256") == input_sha256 \
            and products.verified(summary, out, storage_options):
        return summary
    return None


def check_memory(cfg: ImageConfig, prior: Prior) -> None:
    """ValueError before any work if S samples of N² pixels need more memory than this machine has free."""
    need = BYTES_PER_PIXEL_CHANNEL * prior.meta.unet.base_channels * cfg.sampler.samples * cfg.N ** 2 if prior.meta.unet \
        else 0
    free = available_memory()
    if free and need > free:
        raise ValueError(f"--N {cfg.N} with --samples {cfg.sampler.samples} needs about {need / 2**30:.1f} GiB for the "
                         f"denoiser; {free / 2**30:.1f} GiB is available. Use a smaller --N or fewer --samples.")


def image_file(path: str, cfg: ImageConfig, root: str = "runs", storage_options: StorageOptions = None,
               prior: Optional[Prior] = None, source: Optional[str] = None, command: str = "",
               show_progress: bool = False) -> dict[str, Any]:
    """Image one local file (``source``: its original URL, default ``path``) into its folder of the run
    (``output_dir``), summary.json last; a finished identical result is returned as it is, with
    ``"reused": True``. Errors about the file are VisibilityFileError naming it. ``command``: the command line,
    recorded in the FITS products' HISTORY; ``show_progress``: a bar on stderr (``reporting.progress``)."""
    t0 = time.perf_counter()
    source = source or path
    prior = prior or load_prior(cfg.prior, torch.device("cpu"))
    key, sha = run_key(cfg, prior), input_checksum(path)
    out = output_dir(root, key, source)
    done = finished(root, key, source, sha, storage_options)
    if done is not None:
        return {**done, "reused": True}
    _clear(out, source, storage_options)  # a stale result (other bytes, a lost product) goes before anything new
    vis = read_visibilities(path)
    vis = vis.with_intervals(solution_intervals(vis.time_jd, cfg.selfcal.solint))  # over all: the held-out share them
    held = None
    if cfg.holdout > 0:
        try:
            mask = holdout_mask(vis.antenna1, vis.antenna2, vis.time_jd, cfg.holdout, cfg.seed)
        except ValueError as err:
            raise VisibilityFileError(f"{os.path.basename(path.rstrip('/'))}: {err}") from None
        vis, held = vis.subset(~mask), vis.subset(mask)
    held_raw = held
    seed = derive_seed(cfg.seed, "image", sha)
    bar = StageBar(product_name(source), show_progress)
    try:  # the bar is closed however the imaging ends (an error, Ctrl-C), so a message starts its own line
        try:
            term = data_term(vis, cfg)
            candidate, final = imager(vis, cfg, prior, seed, term["data_term"], lambda im, s: gain_evidence(vis, im, s))
            imaged, scale, closures, candidates, raw_closures, applied, reason = image_at_best_scale(
                vis, cfg, term["data_term"], candidate, final, bar.stage)
        except ImagingSettingsError:
            raise
        except ValueError as err:  # e.g. no baseline to fit a pixel scale to, no positive CLEAN flux
            raise VisibilityFileError(f"{os.path.basename(path.rstrip('/'))}: {err}") from None
        raw, vis, r, obs = vis, vis.with_values(imaged.data.vis, imaged.data.weight), imaged.result, imaged.prepared.obs
        if held is not None and imaged.selfcal is not None:
            held = held.corrected(imaged.selfcal.solution)
        bar.stage(len(candidates or []) + 1, len(candidates or []) + 2, "quality figures and products")
        fit, mean_model = raw_fit(vis, r, scale)  # degridded once: the χ² and the residual image share it
        on_data, on_weights = imaged.prepared.likelihood_data(imaged.data), imaged.prepared.on_imaging_weights
        residual = nufft_dirty(on_data.uv, on_data.vis - mean_model, on_weights, cfg.N, scale)
        ms = multiscale_components(on_data, on_weights, r, residual, scale, cfg.N)
        check, conformal, heldout_z = predictive_summary(held, held_raw, raw, imaged, scale, seed)
        extra = structure_maps(imaged)
        if conformal is not None:
            extra["std-recalibrated"] = r.std.numpy() * conformal
        images = sky_images(imaged, residual, cfg.N, extra)
        name = product_name(source)
        provenance = Provenance(command, source, sha, prior.sha256, key, finite(cfg.to_dict()), applied)
        rendered = render_products(name=name, vis=vis, raw=raw, imaged=imaged, scale=scale, N=cfg.N, images=images,
                                   model_vis=mean_model, gains=gains_csv(imaged), provenance=provenance,
                                   chi2=(fit["chi2_per_coordinate"], fit["chi2_clean_components"]), heldout_z=heldout_z,
                                   closures=raw_closures)
        files = {k: storage.join(out, f) for k, f in (("fits", "image.fits"), ("png", "panel.png"),
                                                      ("diagnostics", "diagnostics.png"), ("gains", "gains.csv"),
                                                      ("image", f"{name}-image.fits")) if f in rendered}
        calib = selfcal_summary(raw, imaged, scale, applied, reason)
        summary = {"chi2_raw_visibilities": calib.get("chi2_before_selfcal", fit["chi2_per_coordinate"]),
                   "chi2_after_gains": fit["chi2_per_coordinate"] if imaged.selfcal is not None else None,
                   "file": source, "input_sha256": sha, "run_key": key, "source": vis.source, "telescope": vis.telescope, "date_obs": vis.date_obs,
                   "ra_deg": vis.ra_deg, "dec_deg": vis.dec_deg, "ref_freq_hz": vis.ref_freq_hz, "stokes_from": vis.stokes_from,
                   "n_vis": vis.n, "n_flagged": vis.n_flagged, "n_bad_coordinates": vis.n_bad_coordinates,
                   "n_autocorrelations": vis.n_autocorrelations, "n_bad_antennas": vis.n_bad_antennas,
                   "n_bad_times": vis.n_bad_times, "n_bad_weights": vis.n_bad_weights,
                   "warnings": list(vis.warnings), "n_on_grid": obs.grid.n_on, "n_off_grid": obs.grid.n_off,
                   "N": cfg.N, "pixel_scale_arcsec": scale, **people_figures(images, imaged, scale), "pixel_scale_candidates": candidates, **chosen_field(candidates, scale),
                   "weighting": cfg.grid.weighting, "robust": cfg.grid.robust,
                   "sigma_jy_weights": obs.sigma_weights, "sigma_jy_scatter": obs.sigma_scatter, "noise_used": cfg.sampler.noise,
                   "flux_scale_jy_per_pixel": r.flux_scale, "flux_scale_initial": r.flux_scale_initial,
                   "sigma_y_model": r.sigma_y, **term, "likelihood": r.likelihood, **fit,
                   "chi2_gridded_cells": r.chi2_gridded, **holdout_chi2(held, r, scale, cfg, ms), **brightness_range(r),
                   **multiscale_fit(vis, ms, scale), **calib,
                   **closures, **check, **sampling_error(r),
                   "total_flux_jy": r.total_flux,
                   "total_flux_clean_jy": r.total_flux_clean, "sampler": cfg.sampler.sampler.to_dict(), "K": cfg.sampler.K,
                   "samples": cfg.sampler.samples, "prior": cfg.prior, "prior_sha256": prior.sha256,
                   "seconds_sampling": r.seconds, "seconds": time.perf_counter() - t0, **files}
        summary = products.commit(out, rendered, rounded(summary, SUMMARY_DIGITS, EXACT_KEYS), source, storage_options)
        return {**json.loads(dumps(summary)), "reused": False}
    finally:
        bar.close()


def _clear(out: str, source: str, storage_options: StorageOptions) -> None:
    try:
        products.clear(out, storage_options)
    except OSError as err:
        raise ProductWriteError(f"{source}: cannot clear its earlier products under {out} "
                                f"({type(err).__name__}: {err.strerror or err})") from None


def image_or_skip(path: str, cfg: ImageConfig, root: str, storage_options: StorageOptions = None,
                  prior: Optional[Prior] = None, command: str = "", show_progress: bool = False) -> dict[str, Any]:
    """The summary of ``path`` (local or remote: copied here first), or {"file", "error"} naming it for any
    failure of the file; {"file", "error", "fatal": "output" or "settings"} for a failure of the run (module
    docstring)."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = local_copy(path, storage_options, tmp)
            return image_file(local, cfg, root, storage_options, prior, source=path, command=command,
                              show_progress=show_progress)
        except ProductWriteError as err:
            return {"file": path, "error": str(err), "fatal": "output"}
        except ImagingSettingsError as err:
            return {"file": path, "error": str(err), "fatal": "settings"}
        except Exception as err:  # noqa: BLE001: one file's failure of any kind is that file's skip
            return {"file": path, "error": describe_failure(path, err)}


def raise_fatal(result: dict[str, Any]) -> None:
    """Raise a run's failure that ``image_or_skip`` reported (``"fatal"``): OSError for outputs that cannot be
    written, ValueError for settings the data cannot support; nothing for a file's skip."""
    if result.get("fatal"):
        raise (OSError if result["fatal"] == "output" else ValueError)(result["error"])


def describe_failure(path: str, err: Exception) -> str:
    """One line naming the file: the error's own message where it names the file, else 'name: Type: message'."""
    name = os.path.basename(path.rstrip("/")) or path
    text = " ".join(str(err).split()) or type(err).__name__
    if isinstance(err, VisibilityFileError) or name in text:
        return text[:500]
    kind = "" if isinstance(err, (OSError, ValueError)) else f"{type(err).__name__}: "
    return f"{name}: {kind}{text}"[:500]


def input_checksum(path: str, storage_options: StorageOptions = None) -> str:
    """SHA256 of an input's bytes (a Measurement Set: of its files); refuses pipes and devices first."""
    if not storage.is_remote(path):
        from sources.uvfits import check_input

        check_input(path)
    return storage.checksum(path, storage_options)


def write_run_record(root: str, key: str, settings: dict, results: list[dict], failures: list[dict],
                     storage_options: StorageOptions = None) -> str:
    """``run.json`` of a run: its settings, the files imaged now, reused and skipped (with the reason)."""
    url = storage.join(storage.normalise_url(root), "images", key, RUN)
    record = {"run_key": key, "settings": settings,
              "imaged": [r["file"] for r in results if not r.get("reused")],
              "reused": [r["file"] for r in results if r.get("reused")],
              "skipped": [{"file": f["file"], "error": f["error"]} for f in failures]}
    storage.write_bytes(url, dumps(record, indent=2).encode(), storage_options)
    return url

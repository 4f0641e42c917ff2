"""From an imaged field to what a user gets: the quality figures, the rendered products (FITS, PNG, CSV) and
the typed ``ImagingProduct`` (``imager.product``) that summary.json holds.

    fit        the mean's χ² on the raw visibilities and on the data as imaged; the residual image
    CLEAN      radler's multiscale components beside the posterior (where radler is installed)
    check      the held-out predictive check and the structure maps (``imager.predictive``)
    products   every file rendered to bytes (``reporting.image_products``), written by the caller
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional

from configs.image import ImageConfig
from ddrm.config import option_values
from ddrm.radio.dirty import nufft_dirty
from ddrm.radio.imaging import IMAGING_ALGORITHM
from ddrm.radio.visibilities import Visibilities
from imager.predictive import predictive_summary, structure_maps
from imager.product import (Beam, DataTerm, Field, Fit, Images, ImagingProduct, Observation, Posterior, Provenance,
                             Timings)
from imager.quality import (brightness_range, gains_csv, holdout_chi2, multiscale_components, multiscale_fit, raw_fit,
                             sampling_error, selfcal_summary)
from imager.scale import FieldImage, chosen_field
from reporting.image_products import people_figures, product_name, render_products, sky_images
from stores import storage
from stores.checkpoints import Prior
from stores.fits_products import Provenance as FitsProvenance
from stores.jsonio import finite

PRODUCT_FILES = (("fits", "image.fits"), ("png", "panel.png"), ("diagnostics", "diagnostics.png"),
                 ("gains", "gains.csv"))


@dataclass(frozen=True)
class Run:
    """Where and how one file is imaged: its URL, SHA256 and output folder, the run key, the config, the
    prior, the command line and the file's seed."""

    source: str
    sha256: str
    out: str
    key: str
    cfg: ImageConfig
    prior: Prior
    command: str
    seed: int


def observation(run: Run, vis) -> Observation:
    """What the file says (``sources.uvfits.VisibilityFile``'s header and flag counts)."""
    return Observation(file=run.source, input_sha256=run.sha256, source=vis.source, telescope=vis.telescope,
                       date_obs=vis.date_obs, ra_deg=vis.ra_deg, dec_deg=vis.dec_deg, ref_freq_hz=vis.ref_freq_hz,
                       stokes_from=vis.stokes_from, n_vis=vis.n, n_flagged=vis.n_flagged,
                       n_bad_coordinates=vis.n_bad_coordinates, n_autocorrelations=vis.n_autocorrelations,
                       n_bad_antennas=vis.n_bad_antennas, n_bad_times=vis.n_bad_times,
                       n_bad_weights=vis.n_bad_weights, warnings=tuple(vis.warnings))


def assemble(run: Run, raw: Visibilities, held: Optional[Visibilities], found: FieldImage, term: DataTerm,
             t0: float) -> tuple[ImagingProduct, dict[str, bytes]]:
    """(the product, its files' bytes by name) of a field imaged from ``raw`` (the file's kept samples; ``held``
    the held-out ones, raw, or None); ``t0`` the imaging's start (``time.perf_counter``)."""
    cfg, imaged, scale, N = run.cfg, found.imaged, found.scale, run.cfg.N
    r, obs = imaged.result, imaged.prepared.obs
    vis = raw.with_values(imaged.data.vis, imaged.data.weight)  # calibrated by the gains, where solved
    fit, mean_model = raw_fit(vis, r, scale)  # degridded once: the χ² and the residual image share it
    on_data, on_weights = imaged.prepared.likelihood_data(imaged.data), imaged.prepared.on_imaging_weights
    residual = nufft_dirty(on_data.uv, on_data.vis - mean_model, on_weights, N, scale)
    ms = multiscale_components(on_data, on_weights, r, residual, scale, N)
    held_calibrated = held.corrected(imaged.selfcal.solution) if held is not None and imaged.selfcal else held
    check, conformal, heldout_z = predictive_summary(held_calibrated, held, raw, imaged, scale, run.seed)
    extra = structure_maps(imaged)
    if conformal is not None:
        extra["std-recalibrated"] = r.std.numpy() * conformal
        extra["halfwidth95-recalibrated"] = extra["std-recalibrated"] * check["tail_bound_95"]
    images = sky_images(imaged, residual, N, extra)
    name = product_name(run.source)
    provenance = FitsProvenance(run.command, run.source, run.sha256, run.prior.sha256, run.key,
                                finite(cfg.to_dict()), found.selfcal, finite(option_values(cfg)))
    rendered = render_products(name=name, vis=vis, raw=raw, imaged=imaged, scale=scale, N=N, images=images,
                               model_vis=mean_model, gains=gains_csv(imaged), provenance=provenance,
                               chi2=(fit["chi2_per_coordinate"], fit["chi2_clean_components"]), heldout_z=heldout_z,
                               closures=found.raw_closures, note=found.closure_fit.warning())
    files = {k: storage.join(run.out, f) if f in rendered else None
             for k, f in PRODUCT_FILES + (("image", f"{name}-image.fits"),)}
    calib = selfcal_summary(raw, imaged, scale, found.selfcal, found.selfcal_reason)
    people = people_figures(images, imaged, scale)
    score, scored_on = chosen_field(found.candidates, scale)
    product = ImagingProduct(
        observation=observation(run, vis),
        field=Field(N=N, pixel_scale_arcsec=scale, pixel_scale=people["pixel_scale"], weighting=cfg.grid.weighting,
                    robust=cfg.grid.robust, n_on_grid=obs.grid.n_on, n_off_grid=obs.grid.n_off,
                    candidates=found.candidates, heldout_closure_score=score, scored_on=scored_on),
        data_term=term,
        posterior=Posterior(likelihood=r.likelihood, sampler=cfg.sampler.sampler.to_dict(), K=cfg.sampler.K,
                            samples=cfg.sampler.samples, prior=cfg.prior, noise_used=cfg.sampler.noise,
                            sigma_jy_weights=obs.sigma_weights, sigma_jy_scatter=obs.sigma_scatter,
                            sigma_y_model=r.sigma_y, flux_scale_jy_per_pixel=r.flux_scale,
                            flux_scale_initial=r.flux_scale_initial, total_flux_jy=r.total_flux,
                            total_flux_clean_jy=r.total_flux_clean, **brightness_range(r), **sampling_error(r)),
        fit=Fit(chi2_raw_visibilities=calib.chi2_before if calib.chi2_before is not None else
                fit["chi2_per_coordinate"],
                chi2_after_gains=fit["chi2_per_coordinate"] if imaged.selfcal is not None else None,
                **fit, chi2_gridded_cells=r.chi2_gridded, **multiscale_fit(vis, ms, scale),
                holdout=holdout_chi2(held_calibrated, r, scale, cfg.holdout, ms)),
        closures=found.closure_fit, selfcal=calib,
        images=Images(**files, beam=Beam(**people["beam"]), peak_jy_per_beam=people["peak_jy_per_beam"],
                      peak_clean_jy_per_beam=people["peak_clean_jy_per_beam"],
                      residual_rms_jy_per_beam=people["residual_rms_jy_per_beam"]),
        timings=Timings(seconds_sampling=r.seconds, seconds=time.perf_counter() - t0),
        provenance=Provenance(run_key=run.key, prior=cfg.prior, prior_sha256=run.prior.sha256,
                              algorithm=IMAGING_ALGORITHM),
        predictive=check)
    return product, rendered


"""What the imaging stage reports about an image: its fit to the visibilities (raw, held-out, closure
quantities), its dynamic range, the multiscale CLEAN comparison and the self-calibration's gains. Each
returns plain dicts for ``summary.json`` (``imager.file``)."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import sys
from typing import Any, Optional

import numpy as np
import torch

from ddrm.radio.closure import Closures, closures, pooled
from ddrm.radio.fit import fit_chi2
from ddrm.radio.gridding import ARCSEC
from ddrm.radio.imaging import Imaged, ImagingResult
from ddrm.radio.nufft import degrid
from ddrm.radio.visibilities import Visibilities
from imager.product import ClosureFit, Holdout, SelfCal


def brightness_range(r: ImagingResult) -> dict[str, Any]:
    """Peak over off-source rms (Jy/beam) of the posterior mean and of CLEAN's restored image, and their flux
    (Jy) in faint emission (1-5 % of CLEAN's peak), both located by CLEAN's restored image (``metrics``)."""
    from ddrm.inverse.metrics import dynamic_range

    mean = dynamic_range(r.mean * r.beam.area_pixels, r.clean)
    return {"dynamic_range_mean": mean["dynamic_range"], "dynamic_range_clean": dynamic_range(r.clean, r.clean)[
                "dynamic_range"],
            "faint_flux_mean_jy": dynamic_range(r.mean, r.clean)["faint_flux"],
            "faint_flux_clean_jy": dynamic_range(r.clean_per_pixel, r.clean)["faint_flux"],
            "n_faint_pixels": mean["n_faint_pixels"]}


def multiscale_components(visibilities: Visibilities, imaging_weights: np.ndarray, r: ImagingResult,
                          residual: torch.Tensor, scale: float, N: int) -> Optional[torch.Tensor]:
    """radler's multiscale CLEAN components (Jy/pixel) down to 3× the rms of the mean's residual image, or
    None where radler is not installed; radler's log is kept off stdout (it carries JSON lines)."""
    import ddrm.radio.multiscale as multiscale

    if not multiscale.available():
        return None
    with _quiet_stdout():
        return multiscale.multiscale_clean(visibilities.uv, visibilities.vis, imaging_weights, N, scale, r.beam.fwhm_pixels[0],
                                           threshold_jy=3 * float(residual.std()))


@contextlib.contextmanager
def _quiet_stdout():
    """File descriptor 1 to /dev/null for the duration (a C++ library's log)."""
    sys.stdout.flush()
    saved, null = os.dup(1), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(null)


def raw_fit(vis: Visibilities, r: ImagingResult, scale: float) -> tuple[dict[str, Any], np.ndarray]:
    """The summary's χ² against the file's visibilities (``radio.fit``) of the posterior mean, each
    sample (their mean and spread) and the CLEAN components; and the mean's model visibilities (on-field)."""
    images = {"mean": r.mean, "clean": r.clean_model, **{f"s{i}": s for i, s in enumerate(r.samples)}}
    chi2, models, on = fit_chi2(images, vis.uv, vis.vis, vis.weight, scale)
    per_sample = np.array([chi2[f"s{i}"] for i in range(len(r.samples))])
    return {"chi2_per_coordinate": chi2["mean"], "chi2_clean_components": chi2["clean"],
            "chi2_samples_mean": float(per_sample.mean()),
            "chi2_samples_std": float(per_sample.std(ddof=1)) if len(per_sample) > 1 else 0.0,
            "n_vis_chi2": int(on.sum())}, models["mean"]


def multiscale_fit(vis: Visibilities, ms: Optional[torch.Tensor], scale: float) -> dict[str, Any]:
    """Raw χ² and total flux of the multiscale components ({} without radler)."""
    if ms is None:
        return {}
    chi2, _, _ = fit_chi2({"ms": ms}, vis.uv, vis.vis, vis.weight, scale)
    return {"chi2_multiscale_components": chi2["ms"], "total_flux_multiscale_jy": float(ms.sum())}


def holdout_chi2(held: Optional[Visibilities], r: ImagingResult, scale: float, fraction: float,
                 ms: Optional[torch.Tensor] = None) -> Optional[Holdout]:
    """Held-out χ² per real coordinate of the posterior mean, the CLEAN (and multiscale) components and the
    zero image, on the visibilities kept out of the imaging (``crossval``); None without a hold-out."""
    if held is None:
        return None
    images = {"mean": r.mean, "clean": r.clean_model, "zero": torch.zeros_like(r.mean),
              **({"multiscale": ms} if ms is not None else {})}
    chi2, _, on = fit_chi2(images, held.uv, held.vis, held.weight, scale)
    return Holdout(fraction=fraction, n_vis=int(on.sum()), chi2=dict(chi2))


def closure_fit(raw: Visibilities, imaged: Imaged, scale: float) -> tuple[ClosureFit, Closures]:
    """(Closure-phase and log-closure-amplitude χ² (``radio.closure``, S/N ≥ 3) of the posterior
    mean, CLEAN of the uncalibrated data and, if self-calibrated, CLEAN of the calibrated data, all against
    the raw data's closures (on-field samples): they do not depend on the gains; those closures, for the
    diagnostics)."""
    on = imaged.prepared.on
    uv = raw.uv[on]
    cl = closures(raw.vis[on], raw.weight[on], raw.antenna1[on], raw.antenna2[on], raw.time_jd[on], raw.freq_hz[on])
    images = {"mean": imaged.result.mean, "clean": imaged.clean_uncalibrated}
    if imaged.selfcal is not None:
        images["clean_selfcal"] = imaged.result.clean_model
    samples = imaged.result.samples.double()
    stacked = torch.cat([torch.stack([v.double() for v in images.values()]), samples])
    modelled = np.atleast_2d(np.asarray(degrid(uv=uv, image=stacked, pixel_size=scale * ARCSEC)))
    chi2: dict[str, Any] = {}
    for name, m in zip(images, modelled):
        chi2[f"chi2_cphase_{name}"] = cl.chi2_phase(m)
        chi2[f"chi2_logcamp_{name}"] = cl.chi2_logamp(m)
    n_phase, n_logamp = int(len(cl.phase)), int(len(cl.logamp))
    each = [pooled(n_phase, cl.chi2_phase(m), n_logamp, cl.chi2_logamp(m)) for m in modelled[len(images):]]
    median = float(np.median(each)) if each and n_phase + n_logamp else None
    return ClosureFit(n_closure_phases=n_phase, n_log_closure_amplitudes=n_logamp, chi2_pooled_samples_median=median,
                      **chi2), cl


MC_RULE = 0.05  # the mean's sampling noise, max σ/√S, at most this share of its peak


def sampling_error(r) -> dict[str, Any]:
    """The posterior mean's Monte-Carlo error: σ/√S per pixel (σ the samples' std), its rms and its largest value
    against the mean's peak, and the S at which that ratio would meet ``MC_RULE`` (the rule for S: sampling
    noise should not speckle the mean)."""
    S = int(r.samples.shape[0])
    err = r.std / max(S, 1) ** 0.5
    peak = float(r.mean.max())
    ratio = float(err.max()) / peak if peak > 0 and S > 1 else float("nan")
    need = int(np.ceil(S * (ratio / MC_RULE) ** 2)) if ratio == ratio else None
    return {"mean_mc_error_rms_jy_per_pixel": float(err.pow(2).mean().sqrt()) if S > 1 else None,
            "mean_mc_error_peak_ratio": ratio, "samples_for_mc_rule": need, "mc_rule": MC_RULE}


def selfcal_summary(raw: Visibilities, imaged: Imaged, scale: float, applied: str, reason: str) -> SelfCal:
    """What self-calibration applied (and why), its trace, and the mean's raw χ² against the uncalibrated
    data."""
    if imaged.selfcal is None:
        return SelfCal(applied=applied, reason=reason)
    before, _, _ = fit_chi2({"mean": imaged.result.mean}, raw.uv, raw.vis, raw.weight, scale)
    return SelfCal(applied=applied, reason=reason, trace=imaged.selfcal.summary(), chi2_before=before["mean"])


def gains_csv(imaged: Imaged) -> Optional[bytes]:
    """The gains table (antenna, interval, start/stop JD, amplitude, phase in degrees, solved) as CSV, or None."""
    if imaged.selfcal is None or imaged.selfcal.solution is None:
        return None
    rows = imaged.selfcal.solution.table()
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["antenna"])
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode()

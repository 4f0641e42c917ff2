"""The held-out posterior predictive check of an imaged file (``ddrm.radio.predictive``), and the
maps that say where structure is real.

With ``--holdout F``, whole (baseline × scan) blocks are kept out of the imaging. For each held-out
visibility (calibrated by the self-calibration's gains where it ran) z compares the datum with the posterior
samples' model visibilities at its own (u, v); for the closure phases and log closure amplitudes of the raw
data (gain-free) that involve at least one held-out visibility, z compares them with the samples' closure
quantities; ``visibility_blocks`` checks each held-out block's weighted mean visibility the same way, where the
thermal noise is averaged down and the posterior's width weighs more (per visibility, the thermal noise sets
the shares whatever the posterior's width), and ``closure_phase_blocks`` and ``log_closure_amplitude_blocks``
the closures averaged per (closure × scan × frequency) block. The summary gets each check (mean z², shares
inside the 68 % and 95 % intervals, count); the conformal scale c and the 95 % interval's bound k on |z|
(``ddrm.radio.predictive.recalibration``), fitted on the visibility blocks, or on the closure-phase blocks
(gain-free) where the posterior answered to the closures (its held-out visibilities are calibrated by gains
solved against its own mean, whose errors the gains partly absorb and partly add) or no visibility is held
out; and the check of the recalibrated posterior cross-fitted between two seeded halves of the blocks ((c, k)
from one half scoring the other; also with k = 2). ``<name>-std-recalibrated.fits`` is c × the std map (the
68 % half-width), ``<name>-halfwidth95-recalibrated.fits`` k × c × the std map (the 95 % half-width).

Where structure is real: the significance mean/std, and P(x > k · rms_off) per pixel, the share of samples
above k = ``DETECTION_K`` times the off-source rms of the mean (pixels under 1 % of CLEAN's restored peak).
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch

import ddrm.radio.predictive as pp
from ddrm.inverse.metrics import source_mask
from ddrm.radio.closure import closure_phase, closures, log_closure_amplitude
from ddrm.radio.crossval import baseline_scan_blocks, scan_index
from ddrm.radio.fit import on_field
from ddrm.radio.gridding import ARCSEC
from ddrm.radio.imaging import Imaged
from ddrm.radio.nufft import degrid
from ddrm.radio.visibilities import Visibilities

DETECTION_K = 3.0
SOURCE_FRACTION = 0.01  # source pixels: CLEAN's restored image above this share of its peak (``metrics.source_mask``)


def _seeded_half(n: int, seed: int) -> np.ndarray:
    """(n,) bool: a seeded half of n blocks (the larger half when n is odd), for the cross-fitted check."""
    return np.random.default_rng(seed).permutation(n) < (n + 1) // 2


def predictive_summary(held: Optional[Visibilities], held_raw: Optional[Visibilities], kept_raw: Visibilities,
                       imaged: Imaged, scale: float, seed: int
                       ) -> tuple[Optional[dict[str, Any]], Optional[float], np.ndarray]:
    """(the check for the product's ``predictive``, the conformal scale c, the held-out visibilities' z at
    c = 1) or (None, None, []) without a hold-out."""
    none = np.zeros(0)
    if held is None:
        return None, None, none
    samples = imaged.result.samples
    S, N = samples.shape[0], samples.shape[-1]
    if S < 2:
        return {"note": "needs at least 2 posterior samples"}, None, none
    uv = held.uv
    on = on_field(uv, N, scale)
    models = degrid(uv=uv[on], image=samples, pixel_size=scale * ARCSEC)
    r, s2, v = pp.visibility_residuals(held.vis[on], held.weight[on], models)
    z = pp.z_scores(r, s2, v, S)
    out: dict[str, Any] = {"n_samples": S, "visibilities": pp.check(z)}
    fit_on = None
    closure_term = getattr(imaged.result, "likelihood", "") == "closures"
    if on.any():
        blocks = baseline_scan_blocks(held.antenna1[on], held.antenna2[on], held.time_jd[on])
        d, w, m = pp.block_means(blocks, held.weight[on], held.vis[on], models)
        rb, s2b, vb = pp.visibility_residuals(d, w, m)
        out["visibility_blocks"] = pp.check(pp.z_scores(rb, s2b, vb, S))
        half = _seeded_half(len(d), seed)
        fit_on = (rb, s2b, vb, np.tile(half, 2))
    closure_terms = _closure_terms(held_raw, kept_raw, samples, scale)
    for name, (cr, cs2, cv) in closure_terms.items():
        out[name] = pp.check(pp.z_scores(cr, cs2, cv, S))
    fitted_on = "visibility_blocks"
    for name in ("closure_phase_blocks", "closure_phases"):
        if name in closure_terms and (fit_on is None or closure_term):
            half = _seeded_half(len(closure_terms[name][0]), seed)
            fit_on, fitted_on = (*closure_terms[name], half), name
            break
    if fit_on is None:
        return out, None, z
    c, k = pp.recalibration(*fit_on[:3], S)
    out["conformal_scale"], out["tail_bound_95"], out["conformal_fitted_on"] = c, k, fitted_on
    crossed = pp.cross_fitted_z(*fit_on[:3], S, fit_on[3])  # one fit per half for both bounds
    z_cross, bound = crossed if crossed is not None else (np.zeros(0), np.zeros(0))
    out["recalibrated_cross_fitted"] = pp.check(z_cross, bound)
    out["recalibrated_cross_fitted_two_sigma"] = pp.check(z_cross)
    return out, c, z


def _closure_terms(held_raw: Optional[Visibilities], kept_raw: Visibilities, samples: torch.Tensor,
                   scale: float) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(r, σ², v) of the raw closure phases and log closure amplitudes with a held-out member."""
    if held_raw is None:
        return {}
    cat = {k: np.concatenate([getattr(kept_raw, k), getattr(held_raw, k)])
           for k in ("u", "v", "vis", "weight", "antenna1", "antenna2", "time_jd", "freq_hz")}
    is_held = np.r_[np.zeros(kept_raw.n, bool), np.ones(held_raw.n, bool)]
    uv = np.stack([cat["u"], cat["v"]], axis=1)
    on = on_field(uv, samples.shape[-1], scale)
    cl = closures(cat["vis"][on], cat["weight"][on], cat["antenna1"][on], cat["antenna2"][on], cat["time_jd"][on],
                  cat["freq_hz"][on])
    models = degrid(uv=uv[on], image=samples, pixel_size=scale * ARCSEC)
    held_on = is_held[on]
    block = _closure_block_key({k: cat[k][on] for k in ("antenna1", "antenna2", "time_jd", "freq_hz")})
    out = {}
    tri = held_on[cl.triangles].any(axis=1) if len(cl.phase) else np.zeros(0, bool)
    if tri.any():
        sample_phases = np.stack([closure_phase(m, cl.triangles[tri], cl.signs[tri]) for m in models])
        out["closure_phases"] = pp.closure_phase_residuals(cl.phase[tri], cl.sigma_phase[tri], sample_phases)
        out["closure_phase_blocks"] = pp.closure_phase_blocks(block(cl.triangles[tri], cl.signs[tri]),
                                                              cl.phase[tri], cl.sigma_phase[tri], sample_phases)
    quad = held_on[cl.quadrangles].any(axis=1) if len(cl.logamp) else np.zeros(0, bool)
    if quad.any():
        sample_amps = np.stack([log_closure_amplitude(np.abs(m), cl.quadrangles[quad]) for m in models])
        out["log_closure_amplitudes"] = pp.amplitude_residuals(cl.logamp[quad], cl.sigma_logamp[quad], sample_amps)
        q = cl.quadrangles[quad]
        roles = np.tile([1, 1, -1, -1], (len(q), 1))  # numerator, denominator
        out["log_closure_amplitude_blocks"] = pp.amplitude_blocks(block(q, roles, oriented=False), cl.logamp[quad],
                                                                  cl.sigma_logamp[quad], sample_amps)
    return out


def _closure_block_key(vis: dict[str, np.ndarray]):
    """A function (members (m, k), signs (m, k), oriented) -> (m,) block number: closures of the same member
    baselines with the same signs (a triangle the same way round where ``oriented``; a quadrangle's numerator
    and denominator), scan and frequency share a block (``pp.closure_phase_blocks``)."""
    a1, a2 = np.minimum(vis["antenna1"], vis["antenna2"]), np.maximum(vis["antenna1"], vis["antenna2"])
    flip = np.where(vis["antenna1"] <= vis["antenna2"], 1, -1)  # a baseline's sign as (low, high)
    scan, freq = scan_index(vis["time_jd"]), np.unique(vis["freq_hz"], return_inverse=True)[1].ravel()

    def key(members: np.ndarray, signs: np.ndarray, oriented: bool = True) -> np.ndarray:
        per = np.stack([a1[members], a2[members], signs * (flip[members] if oriented else 1)], axis=-1)  # (m, k, 3)
        rows = np.array([sorted(map(tuple, one)) for one in per]).reshape(len(per), -1)
        rows = np.concatenate([rows, scan[members[:, 0], None], freq[members[:, 0], None]], axis=1)
        return np.unique(rows, axis=0, return_inverse=True)[1].ravel()

    return key


def structure_maps(imaged: Imaged) -> dict[str, np.ndarray]:
    """{"significance": mean/std, "detection": P(x > k rms_off)} (N, N) (module docstring)."""
    r = imaged.result
    mean, std, samples = r.mean.double(), r.std.double(), r.samples.double()
    off = ~source_mask(r.clean.double()[None], SOURCE_FRACTION)[0]
    rms = float(mean[off].pow(2).mean().sqrt()) if bool(off.any()) else float(mean.abs().max()) * 1e-3
    defined = std > 1e-9 * max(float(std.max()), 1e-300)  # one sample (or none that differ): no std, no ratio
    return {"significance": torch.where(defined, mean / std.clamp_min(1e-300), torch.nan).numpy(),
            "detection": (samples > DETECTION_K * rms).double().mean(0).numpy()}

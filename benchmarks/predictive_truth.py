"""Does the held-out predictive check predict the truth? Simulated files with known skies, imaged with
``--holdout 0.2`` at the defaults, scored both ways side by side, per array and noise level.

Files (written by another tool, as a user's would be):

    vla_b   FIRST *validation* galaxies (× 0.05 Jy/pixel, 64 × 64 at 1.8″) observed by VLA-B at 1.4 GHz in a
            pyuvdata file (``tests/sim_files.array_uvdata``: 3 scans of 8 min, calibrated), data weight
            1e3 ("low": σ = 0.032 Jy per real coordinate) and 1e2 ("high": 0.1 Jy); imaged at the truth's pixel
    eht     ehtim ``observe_same`` on the real track of the shared M87 095 file (``tests/ehtim_files``: thermal
            noise, 10 % station gains, uncalibrated station phases): FIRST validation galaxies shrunk to 50 and
            70 µas and the sparse-VLBI benchmark's ring40 and crescent44, at 0.6 Jy ("low" noise) and 0.15 Jy
            ("high": the same thermal σ, a quarter of the signal); the field from the imager's own ladder

Scores of each image (S posterior samples):

    check       the truth-free held-out check of ``summary.json``'s ``predictive``: the share of held-out data
                with |z| < 1 and < 2 (nominal 0.683 / 0.954), on the held-out visibilities where the data term
                was the visibilities and on the closure phases with a held-out member where it was the closures
                (gain-free); also the other kinds and the conformal scale c
    truth       the std map's coverage of the truth on source pixels (truth above 1 % of its peak,
                ``ddrm.inverse.metrics.source_mask``): |mean − truth| ≤ t_{S−1} · std · √(1 + 1/S) at 68.3 % and
                95.4 % (``interval_coverage``), after registering the mean onto the truth (self-calibration and
                closures do not know the absolute position); ``truth_recal``: the same with c × std, the
                recalibrated map the imager writes; ``truth_tail95``: the share within the 95 % half-width map
                the imager writes, k · c · std (k the held-out ``tail_bound_95``); ``truth_beam``: the coverage
                at the data's resolution, the
                samples and the truth blurred to the nominal beam (FWHM 1/max|uv|) and their source pixels
    quality     PSNR (vla_b) and ρ_NX at 10 µas (eht) of the registered mean

    python -m benchmarks.predictive_truth [--arrays vla_b,eht] [--galaxies 3] [--out runs/benchmarks/predictive_truth.json]
                                         [--variant NAME --options '{"sampler": "gibbs"}']
                                         [--skies first-val3,ring40] [--noises low]

``--options`` are ``ImageConfig.of``'s names (a dict value: a section's settings by their field names,
``{"likelihood": {"closure": {"rho_max": 1.0}}}``), the same for every file, labelled ``--variant`` in the rows: a
candidate posterior scored beside the default. Resumable: each imaged file's posterior samples, mean,
std, truth and held-out data are kept beside ``--out`` (``<out stem>/<variant>-<array>-<noise>-<sky>.pkl``), and a
row is scored from them; ``--rescore`` scores every kept file again with the current check (no imaging). Last line:
``check68=<x> blocks68=<x> truth68=<x> gap68=<mean |check − truth|> gap68_blocks=<mean |block check − truth|>``
over the variant's rows.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import tempfile
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Optional

import numpy as np
import torch
from astropy.io import fits

from benchmarks.selfcal_sim import LAYOUTS, N
from configs.image import ImageConfig
from ddrm.inverse.metrics import gaussian_blur, interval_coverage, nxcorr, source_mask
import ddrm.radio.predictive as pp
from ddrm.radio.gridding import ARCSEC
import imager.assemble
from imager.file import image_file
from imager.predictive import predictive_summary
from sources.first_package import data_file, read, split_crops
from tests import ehtim_files as ef
from tests.sim_files import array_uvdata, write
from tests.test_selfcal import _psnr, _shifted, registration_shift

S, HOLDOUT, LEVELS = 8, 0.2, (0.6827, 0.9545)
VLA_WEIGHTS = {"low": 1e3, "high": 1e2}
EHT_FLUX = {"low": 0.6, "high": 0.15}


def galaxies(n: int) -> list[np.ndarray]:
    """The first n non-empty N×N crops of the validation split, in [0, 1]."""
    _, crops = split_crops(read(data_file()), "val", N)
    return [(c.astype(np.float32) / np.float32(255.0)).astype(np.float64) for c in crops[:n]]


def eht_skies(n: int, flux: float) -> list[ef.Sky]:
    _, val = split_crops(read(data_file()), "val")
    out = [ef.galaxy(val[i].astype(np.float64) / 255, w, flux=flux, name=f"first-val{i}")
           for i, w in ((3, 50.0), (11, 70.0))[:n]]
    return out + [ef.ring(40, 8, flux=flux), ef.crescent(44, 8, flux=flux)]


def truth_coverage(mean: np.ndarray, std: np.ndarray, truth: np.ndarray, c: float,
                   k: float = pp.LEVELS[1][1]) -> dict:
    """Source-pixel coverage of the registered mean ± t std (and ± t c std) at ``LEVELS`` (module docstring), and
    ``truth_tail95`` of the 95 % half-width map the imager writes, ± k c std (k: ``tail_bound_95``)."""
    shift = registration_shift(mean, truth)
    m, s = _shifted(mean, shift), np.abs(_shifted(std, shift))
    t = torch.from_numpy(truth)[None]
    src = source_mask(t)
    cov = {f"truth{round(100 * q)}": float(interval_coverage(torch.from_numpy(m)[None], torch.from_numpy(s)[None], t,
                                                             q, S, mask=src)[0]) for q in LEVELS}
    cov.update({f"truth_recal{round(100 * q)}": float(interval_coverage(
        torch.from_numpy(m)[None], torch.from_numpy(s)[None], t, q, S, scale=c, mask=src)[0]) for q in LEVELS})
    inside = np.abs(m - truth) <= k * c * s
    cov["truth_tail95"] = float(inside[src[0].numpy()].mean()) if bool(src.any()) else float("nan")
    return {**cov, "registered_mean": m}


def beam_coverage(samples: np.ndarray, truth: np.ndarray, shift: np.ndarray, beam_pixels: float) -> dict:
    """Source-pixel coverage at the data's resolution: the samples (S, N, N) registered by ``shift`` and the
    truth, both blurred to the nominal beam (FWHM 1/max|uv|), mean ± k std of the blurred samples."""
    blur = lambda x: gaussian_blur(torch.from_numpy(np.ascontiguousarray(x)), beam_pixels)  # noqa: E731
    b = torch.stack([blur(_shifted(x, shift)) for x in samples])
    t = blur(truth)[None]
    mean, std = b.mean(0)[None], b.std(0)[None]
    return {f"truth_beam{round(100 * q)}": float(interval_coverage(mean, std, t, q, len(b), mask=source_mask(t))[0])
            for q in LEVELS}


@contextmanager
def kept_inputs(path: str):
    """Keep what the held-out check of the next imaging saw (held-out data, samples, scale, seed) in ``path``."""
    original = imager.assemble.predictive_summary

    def keep(held, held_raw, kept_raw, imaged, scale, seed):
        with open(path, "wb") as f:
            pickle.dump({"held": held, "held_raw": held_raw, "kept_raw": kept_raw, "samples": imaged.result.samples,
                         "scale": scale, "seed": seed}, f)
        return original(held, held_raw, kept_raw, imaged, scale, seed)

    imager.assemble.predictive_summary = keep
    try:
        yield
    finally:
        imager.assemble.predictive_summary = original


def image_and_keep(path: str, cfg: ImageConfig, root: str, kept: str, truth_at=None) -> None:
    """Image ``path`` and add the data term, seconds and pixel scale (and, with ``truth_at``, the mean, std
    and the truth drawn by ``truth_at(pixel_arcsec)``) to the kept check inputs in ``kept``, put in place only
    once complete: a failed imaging leaves no row to resume from."""
    partial = kept + ".partial"
    with kept_inputs(partial):
        product = image_file(path, cfg, root=root).product
    state = pickle.load(open(partial, "rb"))
    state.update(data_term=product.data_term.data_term, seconds=product.timings.seconds,
                 pixel=product.field.pixel_scale_arcsec)
    if truth_at is not None:
        with fits.open(product.images.fits) as h:
            mean, std = (np.squeeze(h[k].data).astype(np.float64) for k in (0, "STD"))
        state.update(mean=mean, std=std, truth=truth_at(product.field.pixel_scale_arcsec))
    with open(partial, "wb") as f:
        pickle.dump(state, f)
    os.replace(partial, kept)


def score(kept: str) -> dict:
    """The row of one kept imaging (module docstring), with the current check."""
    k = pickle.load(open(kept, "rb"))
    imaged = SimpleNamespace(result=SimpleNamespace(samples=k["samples"], likelihood=k["data_term"]))  # what it reads
    pred, c, _ = predictive_summary(k["held"], k["held_raw"], k["kept_raw"], imaged, k["scale"], k["seed"])
    c = 1.0 if c is None else float(c)
    cov = truth_coverage(k["mean"], k["std"], k["truth"], c, (pred or {}).get("tail_bound_95") or pp.LEVELS[1][1])
    m, pixel = cov.pop("registered_mean"), k["pixel"]
    beam = 1 / float(np.hypot(*k["kept_raw"].uv.T).max()) / (pixel * ARCSEC)  # nominal beam, pixels
    cov.update(beam_coverage(k["samples"].numpy(), k["truth"], registration_shift(k["mean"], k["truth"]), beam))
    primary = "closure_phases" if k["data_term"] == "closures" else "visibilities"
    check = pred.get(primary) or {}
    return {**cov, "check68": check.get("coverage_68"), "check95": check.get("coverage_95"), "check_kind": primary,
            "check_n": check.get("n"), "conformal_scale": c, "predictive": pred,
            "psnr": _psnr(m, k["truth"]), "nx_10uas": nxcorr(torch.from_numpy(m), torch.from_numpy(k["truth"]),
                                                             10e-6 / pixel) if pixel < 1e-3 else None,
            "pixel_arcsec": pixel, "data_term": k["data_term"], "seconds": k["seconds"]}


def configured(base: dict, options: dict) -> ImageConfig:
    """``ImageConfig.of(base + options)``, where an option whose value is a dict is one of the config's
    sections, merged into it (``{"likelihood": {"closure": {"rho_max": 1.0}}}``: settings with no option name)."""
    flat = {k: v for k, v in options.items() if not isinstance(v, dict)}
    data = ImageConfig.of(**{**base, **flat}).to_dict()

    def merge(into: dict, given: dict) -> None:
        for k, v in given.items():
            merge(into[k], v) if isinstance(v, dict) else into.__setitem__(k, v)

    merge(data, {k: v for k, v in options.items() if isinstance(v, dict)})
    return ImageConfig.from_dict(data)


def vla_files(n: int, work: str, options: dict, kept_at):
    """Image the VLA-B files whose kept inputs ``kept_at(array, noise, sky)`` are missing (None: not chosen)."""
    p = LAYOUTS["vla_b"]
    for i, x in enumerate(galaxies(n)):
        truth = x * 0.05
        for noise, weight in VLA_WEIGHTS.items():
            kept = kept_at("vla_b", noise, f"first-val{i}")
            if kept is None or os.path.isfile(kept):
                continue
            uvd = array_uvdata(torch.from_numpy(truth), p["scale"], layout="vla_b", freq=p["freq"],
                               dec_deg=p["dec_deg"], times_s=p["times"], weight=weight, seed=3 + i)[0]
            path = write(uvd, os.path.join(work, f"vla-{i}-{noise}.uvfits"))
            cfg = configured({"N": N, "pixel_scale": p["scale"], "samples": S, "holdout": HOLDOUT}, options)
            image_and_keep(path, cfg, os.path.join(work, f"vla-{i}-{noise}"), kept, lambda _pixel: truth)
            yield kept


def eht_files(n: int, work: str, options: dict, kept_at):
    """Image the EHT files whose kept inputs are missing."""
    for noise, flux in EHT_FLUX.items():
        for sky in eht_skies(n, flux):
            kept = kept_at("eht", noise, sky.name)
            if kept is None or os.path.isfile(kept):
                continue
            path = ef.observe(sky, os.path.join(work, f"eht-{sky.name}-{noise}.uvfits"), seed=3)
            cfg = configured({"N": N, "samples": S, "holdout": HOLDOUT}, options)
            image_and_keep(path, cfg, os.path.join(work, f"eht-{sky.name}-{noise}"), kept,
                           lambda pixel, sky=sky: sky.render(N, pixel * 1e6))
            yield kept


def fitted_check(r: dict) -> dict:
    """The block check the row's recalibration was fitted on (``conformal_fitted_on``)."""
    return r["predictive"].get(r["predictive"].get("conformal_fitted_on") or "", {}) or {}


def table(rows: list[dict]) -> None:
    fmt = lambda v: "—" if v is None else f"{v:.2f}"  # noqa: E731
    pair = lambda d, a="coverage_68", b="coverage_95": f"{fmt(d.get(a))} / {fmt(d.get(b))}"  # noqa: E731
    print("| array | noise | sky | check (kind) 68 / 95 | blocks (kind) 68 / 95 | truth 68 / 95 | truth at the beam "
          "68 / 95 | c, k | truth, c × std 68 / k c std 95 | check of (c, k), cross-fitted | quality |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        q = f"{r['psnr']:.1f} dB" if r["array"] == "vla_b" else f"ρ {r['nx_10uas']:.3f}"
        kind = (r["predictive"].get("conformal_fitted_on") or "—").replace("_blocks", "")
        print(f"| {r['array']} | {r['noise']} | {r['sky']} | {pair(r, 'check68', 'check95')} ({r['check_kind']}) | "
              f"{pair(fitted_check(r))} ({kind}) | {pair(r, 'truth68', 'truth95')} | "
              f"{pair(r, 'truth_beam68', 'truth_beam95')} | {r['conformal_scale']:.2f}, "
              f"{fmt(r['predictive'].get('tail_bound_95'))} | {pair(r, 'truth_recal68', 'truth_tail95')} | "
              f"{pair(r['predictive'].get('recalibrated_cross_fitted') or {})} "
              f"| {q} |")
    for array in sorted({r["array"] for r in rows}):
        for noise in ("low", "high"):
            sel = [r for r in rows if r["array"] == array and r["noise"] == noise and r["check68"] is not None]
            if sel:
                print(f"{array} {noise}: " + " ".join(f"{k}={np.mean([r[k] for r in sel]):.3f}" for k in (
                    "check68", "check95", "truth68", "truth95", "truth_beam68", "truth_beam95", "truth_recal68",
                    "truth_recal95", "truth_tail95") if all(r.get(k) is not None for r in sel)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--arrays", default="vla_b,eht")
    p.add_argument("--galaxies", type=int, default=3, help="FIRST validation galaxies per array (eht: at most 2)")
    p.add_argument("--out", default="runs/benchmarks/predictive_truth.json")
    p.add_argument("--variant", default="default", help="the rows' label for --options")
    p.add_argument("--options", default="{}", help="ImageConfig.of options as JSON, e.g. '{\"sampler\": \"gibbs\"}'")
    p.add_argument("--rescore", action="store_true", help="score the kept imagings only (no new imaging)")
    p.add_argument("--skies", default="", help="image only these skies (comma-separated names; default all)")
    p.add_argument("--noises", default="low,high", help="image only these noise levels")
    args = p.parse_args()
    if args.rescore:
        args.arrays = ""
    options = json.loads(args.options)
    torch.set_num_threads(2)
    folder = os.path.splitext(args.out)[0]
    os.makedirs(folder, exist_ok=True)

    skies, noises = set(filter(None, args.skies.split(","))), set(args.noises.split(","))

    def kept_at(array: str, noise: str, sky: str) -> Optional[str]:
        if noise not in noises or (skies and sky not in skies):
            return None
        return os.path.join(folder, f"{args.variant}-{array}-{noise}-{sky}.pkl")

    makers = {"vla_b": vla_files, "eht": eht_files}
    with tempfile.TemporaryDirectory() as work:
        for array in filter(None, args.arrays.split(",")):
            for kept in makers[array](args.galaxies, work, options, kept_at):
                print(f"imaged {os.path.basename(kept)}", flush=True)
    rows = []
    for name in sorted(os.listdir(folder)):
        if name.endswith(".pkl"):
            variant, array, noise, sky = name[:-4].split("-", 3)
            rows.append({"variant": variant, "array": array, "noise": noise, "sky": sky,
                         **score(os.path.join(folder, name))})
            print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in rows[-1].items()
                              if k != "predictive"}), flush=True)
    with open(args.out, "w") as f:
        json.dump(rows, f, indent=1)
    for variant in sorted({r.get("variant", "default") for r in rows}):
        print(f"## {variant}")
        table([r for r in rows if r.get("variant", "default") == variant])
    ok = [r for r in rows if r["check68"] is not None and r.get("variant", "default") == args.variant
          and fitted_check(r).get("coverage_68") is not None]
    if ok:
        mean = lambda f: float(np.mean([f(r) for r in ok]))  # noqa: E731
        recal = lambda r: (r["predictive"].get("recalibrated_cross_fitted") or {}).get("coverage_68")  # noqa: E731
        print(f"check68={mean(lambda r: r['check68']):.3f} blocks68={mean(lambda r: fitted_check(r)['coverage_68']):.3f} "
              f"truth68={mean(lambda r: r['truth68']):.3f} "
              f"gap68={mean(lambda r: abs(r['check68'] - r['truth68'])):.3f} "
              f"gap68_blocks={mean(lambda r: abs(fitted_check(r)['coverage_68'] - r['truth68'])):.3f} "
              f"truth_recal68={mean(lambda r: r['truth_recal68']):.3f} "
              f"gap68_recal={mean(lambda r: abs(recal(r) - r['truth_recal68'])):.3f} "
              f"in_target={sum(0.60 <= r['truth_recal68'] <= 0.76 for r in ok)}/{len(ok)}")

if __name__ == "__main__":
    main()

"""Self-calibration on simulated files written by pyuvdata (``tests/sim_files.py``): FIRST test galaxies
(× 0.05 Jy/pixel) observed by VLA-B (3 scans of 8 min, 1.8″/px) and by EHT 2017 (6 scans of 6 min, the pixel
scale fitted), once clean and once with antenna gains per scan (amplitude 0.7-1.3, phase uniform).

Imaged at N = 64 and the imaging defaults (K = 50, 20 exact sweeps; S = 8 as on the real files): the clean
file without self-calibration, the corrupted one with amp-phase (solnorm over all intervals, the default,
and per interval) and phase-only. PSNR after registering the position (self-calibration cannot know it),
and after also fitting a flux scale. Each row is the mean over ``--images`` test galaxies (the first of the
test split), with each galaxy's own gains; one galaxy's PSNR moves by a few tenths of a dB with the sampler's
seed or a shift of the sky, so one galaxy alone cannot tell 1 dB from 1.2.

The oracle rows bound what any self-calibration can reach from these data: the corrupted file's gains solved
against the *true* sky (amp-phase and phase-only, the same solver and solint), the residual gains g/ĝ written
into a new file (which equals the corrupted data corrected by ĝ), imaged without self-calibration. What the
oracle loses against the clean file is the cost of the gains' own noise, not of the self-calibration loop.

    python -m benchmarks.selfcal_sim [--images 4]    # from the repository root: it uses tests/sim_files.py

Last line: ``vla_gap_db=<clean - amp-phase> eht_gap_db=<clean - amp-phase>`` and the oracle's gaps, means
over the galaxies (the target is 1 dB).
"""

from __future__ import annotations

import argparse
import functools
import json
import tempfile

import numpy as np
import torch
from astropy.io import fits

import ddrm.radio.selfcal as selfcal_module
from configs.image import ImageConfig
from ddrm.radio.exact_gibbs import ExactRefineConfig
from ddrm.radio.gains import GainConfig, solution_intervals
from ddrm.radio.selfcal import solve
from imager.file import image_file
from sources.measurement_set import read_visibilities
from tests.sim_files import array_uvdata, random_gains, scan_times, write
from tests.test_first import _test_images
from tests.test_selfcal import _psnr, _registered

N = 64
LAYOUTS = {"vla_b": dict(scale=1.8, freq=1.4e9, dec_deg=30.0, scans=3, times=scan_times(3, 8), antennas=27),
           "eht2017": dict(scale=None, freq=230e9, dec_deg=12.4, scans=6, times=scan_times(6, 6, gap_s=3000.0),
                           antennas=8)}
RUNS = (("clean", "clean", "none", "all"), ("amp-phase/all", "bad", "amp-phase", "all"),
        ("amp-phase/interval", "bad", "amp-phase", "interval"), ("phase", "bad", "phase", "all"))



def with_exact(cfg, exact):
    """The image config with other exact-likelihood sweeps (a setting the command line does not offer)."""
    import dataclasses

    return dataclasses.replace(cfg, likelihood=dataclasses.replace(cfg.likelihood, exact=exact))

def image_psnr(path: str, scale: float, selfcal: str, solnorm: str, root: str, truth: np.ndarray) -> dict:
    selfcal_module.GainConfig = functools.partial(GainConfig, solnorm=solnorm)  # the self-calibration's solves
    cfg = with_exact(ImageConfig.of(N=N, pixel_scale=scale, K=50, samples=8, selfcal=selfcal), ExactRefineConfig())
    s = image_file(path, cfg, root=root).product
    with fits.open(s.images.fits) as h:
        reg = _registered(np.squeeze(h[0].data).astype(np.float64), truth)
    a = float((reg * truth).sum() / (reg * reg).sum())
    return {"psnr": _psnr(reg, truth), "psnr_scaled": _psnr(a * reg, truth), "flux_scale": a,
            "raw_chi2": s.fit.chi2_per_coordinate, "cphase": s.closures.chi2_cphase_mean,
            "logcamp": s.closures.chi2_logcamp_mean, "seconds": s.timings.seconds}


def oracle_gains(path: str, truth: torch.Tensor, scale: float, mode: str, solnorm: str = "all") -> np.ndarray:
    """(scans, antennas) gains of the file at ``path`` solved against the true sky (columns: the file's
    antennas, sorted, which are the layout's), in the
    convention ``array_uvdata`` applies them: pyuvdata's (and CASA's), uvw = ant2 - ant1. The uvfits file
    has uvw = ant1 - ant2 and the conjugate visibilities (pyuvdata's writer flips both), and gains are
    solved on the file as stored, V = g₁ g₂* M, so they come back conjugated."""
    vis = read_visibilities(path)
    data = vis.with_intervals(solution_intervals(vis.time_jd, "scan"))
    sol = solve(data, truth, scale, GainConfig(mode=mode, solnorm=solnorm))
    return np.conj(sol.gains)


def galaxy_rows(x: torch.Tensor, seed: int) -> dict:
    """Every row of both layouts for one galaxy x (N, N) Jy/pixel, its gains drawn with ``seed``."""
    out = {}
    for layout, p in LAYOUTS.items():
        g = random_gains(p["scans"], p["antennas"], seed=seed)
        kw = dict(layout=layout, freq=p["freq"], dec_deg=p["dec_deg"], times_s=p["times"], weight=1e3, seed=3)
        clean, bad = array_uvdata(x, p["scale"], **kw), array_uvdata(x, p["scale"], gains=g, **kw)
        scale = p["scale"] or clean[3]
        tmp = tempfile.mkdtemp()
        paths = {"clean": write(clean[0], f"{tmp}/clean.uvfits"), "bad": write(bad[0], f"{tmp}/bad.uvfits")}
        for name, which, selfcal, solnorm in RUNS:
            out[f"{layout} {name}"] = image_psnr(paths[which], scale, selfcal, solnorm,
                                                 f"{tmp}/{name.replace('/', '_')}", x.numpy())
        for mode in ("amp-phase", "phase"):
            est = oracle_gains(paths["bad"], x, scale, mode)
            residual = array_uvdata(x, p["scale"], gains=g / est, **kw)[0]
            row = image_psnr(write(residual, f"{tmp}/oracle_{mode}.uvfits"), scale, "none", "all", f"{tmp}/o_{mode}",
                             x.numpy())
            row["gain_amp_err"] = float(np.std(np.log(np.abs(g / est))))
            out[f"{layout} oracle {mode}"] = row
        out[f"{layout} gains"] = {"mean_amp": float(np.abs(g).mean()),
                                  "geometric_mean_amp": float(np.exp(np.log(np.abs(g)).mean()))}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4, help="test galaxies to average over")
    args = parser.parse_args()
    torch.set_num_threads(2)
    xs = _test_images(args.images, N).double() * 0.05
    per = []
    for k, x in enumerate(xs):
        per.append(galaxy_rows(x, seed=7 + k))
        print(f"galaxy {k}:", json.dumps({name: round(row.get("psnr", 0.0), 2) for name, row in per[-1].items()
                                          if "psnr" in row}), flush=True)
    for name, first in per[0].items():
        row = {key: float(np.mean([p[name][key] for p in per])) for key, v in first.items()
               if isinstance(v, float)}
        print(name, json.dumps({key: round(v, 4) for key, v in row.items()}), flush=True)
    gap = {lay: [p[f"{lay} clean"]["psnr"] - p[f"{lay} amp-phase/all"]["psnr"] for p in per] for lay in LAYOUTS}
    oracle = {lay: [p[f"{lay} clean"]["psnr"] - p[f"{lay} oracle amp-phase"]["psnr"] for p in per]
              for lay in LAYOUTS}
    for lay in LAYOUTS:
        print(f"{lay}: gap per galaxy {[round(v, 2) for v in gap[lay]]} dB, "
              f"oracle {[round(v, 2) for v in oracle[lay]]}")
    print(f"vla_gap_db={np.mean(gap['vla_b']):.2f} eht_gap_db={np.mean(gap['eht2017']):.2f} "
          f"vla_oracle_gap_db={np.mean(oracle['vla_b']):.2f} eht_oracle_gap_db={np.mean(oracle['eht2017']):.2f}")


if __name__ == "__main__":
    main()

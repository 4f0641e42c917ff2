"""Does drawing the gains (a Gibbs block) change the posterior's coverage? FIRST *validation* galaxies
(× 0.05 Jy/pixel) observed by VLA-B and EHT 2017 in files written by pyuvdata (``tests/sim_files.py``),
corrupted by gains per antenna per scan (amplitude 0.7-1.3, phase uniform), imaged with amp-phase
self-calibration at N = 64, K = 10, S = 8, 6 exact sweeps, once with one gain solution for every sample
(``--selfcal-gains mode``, the default) and once with each sample's gains drawn (``draw``).

Coverage: the mean and std are registered onto the truth by the mean's fitted shift (self-calibration
cannot know the position), then the fraction of source pixels (truth above 10 % of its peak) with
|mean - truth| ≤ k·std for k = 1, 2. A calibrated posterior with S samples gives P(|t_{S-1}| ≤ k/√(1+1/S))
(the mean's own error included): 0.62 and 0.90 at S = 8. Also the std's median on the source (Jy/pixel)
and the registered PSNR.

    python -m benchmarks.selfcal_coverage     # from the repository root: it uses tests/

Last line: ``coverage2_mode=<x> coverage2_draw=<x> expected2=<x>`` (k = 2, over every galaxy and layout).
"""

from __future__ import annotations

import json
import tempfile

import numpy as np
import torch
from astropy.io import fits
from scipy import stats

from benchmarks.selfcal_sim import LAYOUTS, N
from configs.image import ImageConfig
from ddrm.radio.exact_gibbs import ExactRefineConfig
from imager.file import image_file
from sources.first_package import data_file, read, split_crops
from tests.sim_files import array_uvdata, random_gains, write
from tests.test_selfcal import _psnr, _shifted, registration_shift

S, GALAXIES = 8, 4



def with_exact(cfg, exact):
    """The image config with other exact-likelihood sweeps (a setting the command line does not offer)."""
    import dataclasses

    return dataclasses.replace(cfg, likelihood=dataclasses.replace(cfg.likelihood, exact=exact))

def validation_images(n: int) -> list[np.ndarray]:
    """The first n non-empty N×N crops of the validation split, × 0.05 Jy/pixel."""
    _, crops = split_crops(read(data_file()), "val", N)
    return [(c.astype(np.float32) / np.float32(255.0)).astype(np.float64) * 0.05 for c in crops[:n]]  # as the tests


def coverage(path: str, scale: float, draw: bool, root: str, truth: np.ndarray) -> dict:
    cfg = with_exact(ImageConfig.of(N=N, pixel_scale=scale, K=10, samples=S, selfcal="amp-phase",
                      selfcal_gains="draw" if draw else "mode"), ExactRefineConfig(iterations=6))
    s = image_file(path, cfg, root=root).product
    with fits.open(s.images.fits) as h:
        mean, std = (np.squeeze(h[k].data).astype(np.float64) for k in (0, "STD"))
    shift = registration_shift(mean, truth)
    mean, std = _shifted(mean, shift), np.abs(_shifted(std, shift))
    source = truth > 0.1 * truth.max()
    err = np.abs(mean - truth)[source]
    return {"cover1": float((err <= std[source]).mean()), "cover2": float((err <= 2 * std[source]).mean()),
            "std_median": float(np.median(std[source])), "psnr": _psnr(mean, truth), "seconds": s.timings.seconds}


def main() -> None:
    torch.set_num_threads(2)
    expected = [float(2 * stats.t.cdf(k / np.sqrt(1 + 1 / S), S - 1) - 1) for k in (1, 2)]
    rows = {False: [], True: []}
    for n, x in enumerate(validation_images(GALAXIES)):
        for layout, p in LAYOUTS.items():
            g = random_gains(p["scans"], p["antennas"], seed=7 + n)
            kw = dict(layout=layout, freq=p["freq"], dec_deg=p["dec_deg"], times_s=p["times"], weight=1e3, seed=3 + n)
            bad = array_uvdata(torch.from_numpy(x), p["scale"], gains=g, **kw)
            scale = p["scale"] or bad[3]
            tmp = tempfile.mkdtemp()
            path = write(bad[0], f"{tmp}/bad.uvfits")
            for draw in (False, True):
                row = coverage(path, scale, draw, f"{tmp}/{draw}", x)
                rows[draw].append(row)
                print(f"galaxy {n} {layout} {'draw' if draw else 'mode'}",
                      json.dumps({k: round(v, 4) for k, v in row.items()}), flush=True)
    for draw, name in ((False, "mode"), (True, "draw")):
        print(name, {k: round(float(np.mean([r[k] for r in rows[draw]])), 4) for k in rows[draw][0]})
    print(f"expected1={expected[0]:.3f} expected2={expected[1]:.3f}")
    print(f"coverage2_mode={np.mean([r['cover2'] for r in rows[False]]):.3f} "
          f"coverage2_draw={np.mean([r['cover2'] for r in rows[True]]):.3f} expected2={expected[1]:.3f}")


if __name__ == "__main__":
    main()

"""What self-calibration costs, and what it buys, on the shared EHT files: ``radio-ddrm image FILE --N 64
--K 50 --samples 8`` in process with the shipped prior, once without self-calibration, once with the VLBI
default (phase, per scan), then without again (A-B-A: this machine's speed drifts by tens of per cent
over minutes, so the ratio is taken against the mean of the two plain runs). Per file: seconds, the ratio,
the pixel scale kept (``imager.scale``), the raw χ² before and after, the closure χ² of the posterior mean,
of CLEAN and of CLEAN with self-calibration.

    python -m benchmarks.selfcal_cost      # from the repository root, on a quiet machine

Last line: ``ratio_max=<x>`` (the target is at most 2).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from configs.image import ImageConfig
from imager.file import image_file
from stores.checkpoints import load_prior

VIS = Path(__file__).resolve().parents[1] / "../shared/data/visibilities"
FILES = ("SR1_M87_2017_095_lo_hops_netcal_StokesI.uvfits", "SR1_M87_2017_101_lo_hops_netcal_StokesI.uvfits",
         "CenA_2017_100_lo_hops_netcal_StokesI.uvfits")
KEYS = ("field.pixel_scale_arcsec", "selfcal.chi2_before", "fit.chi2_per_coordinate", "fit.chi2_clean_components",
        "closures.chi2_cphase_mean", "closures.chi2_cphase_clean", "closures.chi2_cphase_clean_selfcal",
        "closures.chi2_logcamp_mean", "closures.chi2_logcamp_clean", "closures.chi2_logcamp_clean_selfcal")


def value(product, path: str):
    """The product's field at a dotted path."""
    for name in path.split("."):
        product = getattr(product, name)
    return product


def timed(path: Path, selfcal: str, root: str, prior) -> tuple[float, dict]:
    cfg = ImageConfig.of(N=64, K=50, samples=8, selfcal=selfcal)
    t0 = time.perf_counter()
    product = image_file(str(path), cfg, root=root, prior=prior).product
    return time.perf_counter() - t0, product


def main() -> None:
    torch.set_num_threads(2)
    prior = load_prior(ImageConfig().prior, torch.device("cpu"))
    ratios = []
    for name in FILES:
        with tempfile.TemporaryDirectory() as root:
            a1, _ = timed(VIS / name, "none", f"{root}/a1", prior)
            b, s = timed(VIS / name, "phase", f"{root}/b", prior)
            a2, _ = timed(VIS / name, "none", f"{root}/a2", prior)
        ratio = b / ((a1 + a2) / 2)
        ratios.append(ratio)
        rounds = len(s.selfcal.trace["rounds_run"])
        print(f"{name}: {a1:.1f} / {b:.1f} / {a2:.1f} s (none / phase / none), ratio {ratio:.2f}, {rounds} rounds, "
              + " ".join(f"{k}={value(s, k):.3g}" for k in KEYS), flush=True)
    print(f"ratio_max={max(ratios):.2f}")


if __name__ == "__main__":
    main()

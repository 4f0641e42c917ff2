"""The calibration targets on the shipped FIRST prior: DDRM and split Gibbs side by side on the paper's VLA
mask, noiseless and σ_y = 0.02. Per sampler: posterior-mean PSNR, S-corrected coverage (all and source
pixels), the conformal scale fitted on validation images and the test coverage it gives, network
evaluations per sample and seconds per observation; a reliability diagram (PNG).

Needs torch and this repository only (no Prefect, Ray or zarr), so it runs on a bare GPU box:

    python benchmarks/calibration_first.py export runs/first_eval_images.npz   # here: FIRST test + valid images
    python benchmarks/calibration_first.py run runs/first_eval_images.npz --n 16 --S 16 --K 50 --out OUT
    (``--prior DIR`` scores a checkpoint, e.g. a candidate prior, in place of the shipped one)

Test split for the table, validation split for the conformal fit only. Last line:
``ddrm_cov68_src=<x> gibbs_cov68_src=<x> ddrm_psnr=<x> gibbs_psnr=<x> nfe_ratio=<x>`` (σ_y = 0.02).
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
import torch

from ddrm import DDRMConfig, SplitGibbsConfig
from ddrm.inverse.calibration import RELIABILITY_LEVELS as LEVELS
from ddrm.inverse.calibration import recalibrate, reliability, tarp_coverage
from ddrm.inverse.metrics import all_metrics, psnr_from_mse
from ddrm.radio.observe import paper_operator
from ddrm.radio.pipeline import posterior_of_stack
from reporting.plots import reliability_png
from sources.first_package import data_file, read, split_crops
from stores.checkpoints import load_prior


def export(path: str, n: int = 64) -> None:
    g = read(data_file())
    out = {}
    for split in ("test", "val"):
        keep, crops = split_crops(g, split)  # the store's rule: empty crops are skipped
        out[split], out[f"{split}_index"] = crops[:n], keep[:n]
    np.savez_compressed(path, **out)
    print(f"wrote {path}: test {out['test'].shape}, val {out['val'].shape}")


def posterior(images: torch.Tensor, op, sigma: float, sampler, prior, K: int, S: int, batch: int, device, seed: int):
    """Samples (n, S, N, N) in image space and seconds per observation (``ddrm.radio.pipeline.posterior_of_stack``)."""
    post = posterior_of_stack(prior, images, op, sigma, sampler, K=K, S=S, batch=batch, seed=seed, device=device)
    return post.samples, post.seconds


def gibbs_config(args):
    """The sampler's defaults unless ``--sweeps/--rho-min/--anneal`` override them."""
    given = {"sweeps": args.sweeps, "rho_min": args.rho_min, "anneal": args.anneal}
    return SplitGibbsConfig(**{k: v for k, v in given.items() if v is not None})


def evaluate(args) -> dict:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    data = np.load(args.images)
    test = torch.from_numpy(data["test"][:args.n].astype(np.float32) / 255)
    val = torch.from_numpy(data["val"][:args.n].astype(np.float32) / 255)
    prior = load_prior(args.prior, device)
    op = paper_operator("vla")
    results, curves = {}, {}
    for sigma in args.sigma:
        for sampler in (DDRMConfig(), gibbs_config(args)):
            key = f"{sampler.name}_sigma{sigma:g}"
            xs, sec = posterior(test, op, sigma, sampler, prior, args.K, args.S, args.batch, device, 0)
            xv, _ = posterior(val, op, sigma, sampler, prior, args.K, args.S, args.batch, device, 10_000)
            m = all_metrics(xs, test.double())
            mu, sd = xs.mean(1), xs.std(1)
            cal = recalibrate(mu, sd, test.double(), args.S, (xv.mean(1), xv.std(1), val.double()), LEVELS)
            row = {"psnr_mean": float(psnr_from_mse(((mu - test) ** 2).flatten(1).mean(1)).mean()),
                   "psnr": float(m["psnr"].mean()), "nfe": sampler.nfe(args.K), "s_per_obs": sec,
                   **{k: float(m[k].nanmean()) for k in ("cov68", "cov95", "cov68_src", "cov95_src", "sre")},
                   **{k: cal[k] for k in ("scale68", "scale95", "cov68_src_cal", "cov95_src_cal")}}
            row["tarp_max_dev"] = tarp_coverage(xs, test.double())[2]
            curves[key] = reliability(mu, sd, test.double(), args.S, LEVELS)
            results[key] = row
            print(key, json.dumps({k: round(v, 4) for k, v in row.items()}), flush=True)
    return {"results": results, "curves": curves, "levels": LEVELS, "device": str(device),
            "gpu": torch.cuda.get_device_name() if device.type == "cuda" else None, "args": vars(args)}


def reliability_figure(report: dict, path: str) -> None:
    """The report's reliability diagram (``reporting.plots.reliability_png``; raw curves only here)."""
    curves = {key.replace("_sigma", ", σ_y="): (curve, []) for key, curve in report["curves"].items()}
    with open(path, "wb") as f:
        f.write(reliability_png(list(report["levels"]), curves))


def main() -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export")
    e.add_argument("path")
    r = sub.add_parser("run")
    r.add_argument("images")
    r.add_argument("--prior", default="first", help="a packaged prior's name or a checkpoint directory")
    r.add_argument("--n", type=int, default=16)
    r.add_argument("--S", type=int, default=16)
    r.add_argument("--K", type=int, default=50)
    r.add_argument("--sweeps", type=int)
    r.add_argument("--rho-min", type=float)
    r.add_argument("--anneal", type=float)
    r.add_argument("--batch", type=int, default=16)
    r.add_argument("--sigma", type=float, nargs="+", default=[0.0, 0.02])
    r.add_argument("--out", default=".")
    args = p.parse_args()
    if args.cmd == "export":
        export(args.path)
        return
    report = evaluate(args)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "calibration_first.json"), "w") as f:
        json.dump(report, f, indent=2)
    reliability_figure(report, os.path.join(args.out, "reliability.png"))
    res, s = report["results"], max(args.sigma)
    d, g = res[f"ddrm_sigma{s:g}"], res[f"gibbs_sigma{s:g}"]
    print(f"ddrm_cov68_src={d['cov68_src']:.3f} gibbs_cov68_src={g['cov68_src']:.3f} ddrm_psnr={d['psnr_mean']:.2f} "
          f"gibbs_psnr={g['psnr_mean']:.2f} nfe_ratio={g['nfe'] / d['nfe']:.1f}")


if __name__ == "__main__":
    main()

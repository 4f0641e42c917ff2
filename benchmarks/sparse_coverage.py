"""Sparse coverage, validation split: does the imaging stage's default sampler keep the prior's structure
where the data leave most of the image to it?

On the paper's EHT and VLA cell masks (H = S F exactly), FIRST *validation* galaxies (firstgalaxydata's
literature split, centre 150×150, the first ``--n`` non-empty ones), K = 50, S = 4, σ_y ∈ {0, 0.02}:
the posterior-mean PSNR (dB, mean over images) of

    dirty, clean          the baselines (``ddrm.baselines``)
    ddrm                  the paper's DDRM
    ddrm_data             DDRM with its final data step (the imaging stage's sampler on the grid)
    default               ddrm_data, then the exact-likelihood split-Gibbs sweeps from small ρ
                          (``ddrm.exact_gibbs.refine``, the imaging default's second stage, here with the
                          operator's own exact step)
    gibbs                 split Gibbs with its defaults from ρ = 10 (``--gibbs``; 8 sweeps, slow on a CPU)

    python benchmarks/sparse_coverage.py --n 8

Last line: ``eht_default=<dB> eht_clean=<dB> eht_ddrm=<dB> vla_default=<dB> vla_clean=<dB> vla_ddrm=<dB>``
(σ_y = 0.02; the JSON rows give both noise levels).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from ddrm import DDRMConfig, SplitGibbsConfig
from ddrm.baselines import baselines
from ddrm.exact_gibbs import ExactRefineConfig, operator_step, refine
from ddrm.interferometry.observe import paper_operator
from ddrm.metrics import mse_mean, psnr_from_mse
from ddrm.pipeline import simulate
from ddrm.reconstruct import reconstruct
from ddrm.sampling import make_generators
from ddrm.units import to_image
from sources.first_package import data_file, read, split_crops
from stores.checkpoints import load_prior


def psnr_of_mean(images: torch.Tensor, truth: torch.Tensor) -> float:
    """Mean over observations of the PSNR of images (B, S, N, N) or (B, N, N), clipped to [0, 1]."""
    x = images if images.dim() == 4 else images[:, None]
    return float(psnr_from_mse(mse_mean(x.double().clamp(0, 1), truth.double())).mean())


def methods(prior, truth: torch.Tensor, op, sigma: float, K: int, S: int, gibbs: bool,
            grid: tuple = ()) -> dict[str, float]:
    """{method: PSNR of the posterior mean} for one batch of truths (B, N, N) (module docstring); ``grid``:
    further ExactRefineConfigs, each refining the same DDRM samples (``refine_<rho_max>:<rho_min>:<n>``)."""
    B, sched = len(truth), prior.schedule
    den = prior.denoiser
    y = simulate(truth.double(), op, sigma, make_generators([7000 + i for i in range(B)]))
    out = {k: psnr_of_mean(v, truth) for k, v in baselines(y, op, sigma).items()}
    seeds = [100 + i for i in range(B)]
    for name, cfg in (("ddrm", DDRMConfig()), ("ddrm_data", DDRMConfig(data_step=True))):
        t0 = time.perf_counter()
        post = reconstruct(y.float(), op, sigma, den, sched, cfg, make_generators(seeds), K=K, S=S, clip=False)
        out[name], out[f"{name}_s"] = psnr_of_mean(post.samples, truth), (time.perf_counter() - t0) / B
        if name == "ddrm_data":
            t0 = time.perf_counter()
            gens = make_generators([s + 2 for s in seeds])
            x = refine(den, 2 * post.samples.double() - 1, operator_step(op, y, sigma, gens), sched, gens,
                       ExactRefineConfig())
            out["default"], out["default_s"] = psnr_of_mean(to_image(x), truth), out[f"{name}_s"] + \
                (time.perf_counter() - t0) / B
            for cfg_r in grid:
                gens = make_generators([s + 2 for s in seeds])
                x = refine(den, 2 * post.samples.double() - 1, operator_step(op, y, sigma, gens), sched, gens, cfg_r)
                out[f"refine_{cfg_r.rho_max:g}:{cfg_r.rho_min:g}:{cfg_r.iterations}"] = psnr_of_mean(to_image(x), truth)
    if gibbs:
        post = reconstruct(y.float(), op, sigma, den, sched, SplitGibbsConfig(), make_generators(seeds), K=K, S=S)
        out["gibbs"] = psnr_of_mean(post.samples, truth)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--K", type=int, default=50)
    p.add_argument("--S", type=int, default=4)
    p.add_argument("--sigma", type=float, nargs="+", default=[0.0, 0.02])
    p.add_argument("--masks", nargs="+", default=["eht", "vla"])
    p.add_argument("--gibbs", action="store_true")
    p.add_argument("--refine-grid", nargs="*", default=[], help="rho_max:rho_min:iterations entries to compare")
    p.add_argument("--out")
    args = p.parse_args()
    torch.set_num_threads(2)
    prior = load_prior("first", torch.device("cpu"))
    _, crops = split_crops(read(data_file()), "val", 150)
    truth = torch.from_numpy(crops[:args.n].astype(np.float32) / 255)
    grid = tuple(ExactRefineConfig(float(a), float(b), int(c)) for a, b, c in (e.split(":") for e in args.refine_grid))
    rows = []
    for mask in args.masks:
        op = paper_operator(mask)
        for sigma in args.sigma:
            rows.append({"mask": mask, "sigma": sigma, "n": len(truth),
                         **methods(prior, truth, op, sigma, args.K, args.S, args.gibbs, grid)})
            print(json.dumps(rows[-1]), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=2)
    last = {r["mask"]: r for r in rows if r["sigma"] == max(args.sigma)}
    print(" ".join(f"{m}_{k}={last[m][k]:.2f}" for m in last for k in ("default", "clean", "ddrm")))


if __name__ == "__main__":
    main()

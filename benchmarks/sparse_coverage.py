"""Sparse coverage, validation split: does the imaging stage's default sampler keep the prior's structure
where the data leave most of the image to it?

On the paper's EHT and VLA cell masks (H = S F exactly), FIRST *validation* galaxies (firstgalaxydata's
literature split, centre 150×150, the first ``--n`` non-empty ones), K = 50, S = 4, σ_y ∈ {0, 0.02}:
the posterior-mean PSNR (dB, mean over images) of

    dirty, clean          the baselines (``ddrm.radio.baselines``)
    multiscale            radler's multiscale CLEAN on the same dirty image, PSF and threshold (if installed)
    ddrm                  the paper's DDRM
    ddrm_data             DDRM with its final data step (the imaging stage's sampler on the grid)
    default               ddrm_data, then the exact-likelihood split-Gibbs sweeps from small ρ
                          (``ddrm.radio.exact_gibbs.refine``, the imaging default's second stage, here with the
                          operator's own exact step)
    gibbs                 split Gibbs with its defaults from ρ = 10 (``--gibbs``; 8 sweeps, slow on a CPU)

``faint_<method>``: the flux it puts in the truth's faint pixels (1/255 to 5 % of the peak) over the truth's
there (1 = all of it). ``--halo A`` adds a smooth halo at A × the peak (A < 1/255: under the 8-bit step the
prior was trained on) and reports ``halo_<method>``, the share of the halo's flux each method puts back.

    python benchmarks/sparse_coverage.py --n 8 [--halo 0.002]

Last line: ``eht_default=<dB> eht_clean=<dB> eht_ddrm=<dB> vla_default=<dB> vla_clean=<dB> vla_ddrm=<dB>``
(σ_y = 0.02; the JSON rows give both noise levels).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

import ddrm.radio.multiscale as multiscale
from ddrm import DDRMConfig, SplitGibbsConfig
from ddrm.inverse.metrics import FAINT_LEVEL, mse_mean, psnr_from_mse
from ddrm.inverse.reconstruct import reconstruct
from ddrm.inverse.samplers import make_generators
from ddrm.inverse.units import to_image
from ddrm.radio.baselines import CleanConfig, baselines
from ddrm.radio.exact_gibbs import ExactRefineConfig, operator_step, refine
from ddrm.radio.observe import paper_operator
from ddrm.radio.pipeline import simulate
from sources.first_package import data_file, read, split_crops
from stores.checkpoints import load_prior


def psnr_of_mean(images: torch.Tensor, truth: torch.Tensor) -> float:
    """Mean over observations of the PSNR of images (B, S, N, N) or (B, N, N), clipped to [0, 1]."""
    x = images if images.dim() == 4 else images[:, None]
    return float(psnr_from_mse(mse_mean(x.double().clamp(0, 1), truth.double())).mean())


def faint_ratio(images: torch.Tensor, truth: torch.Tensor) -> float:
    """Σ image / Σ truth over the truth's faint pixels, those in [1/255, 5 %] of each image's peak (the 8-bit
    floor to the faint-emission bound of ``ddrm.inverse.metrics.dynamic_range``), pooled over the batch; images
    (B, S, N, N) are averaged over S first."""
    x = (images.mean(1) if images.dim() == 4 else images).double()
    peak = truth.double().flatten(1).amax(1)[:, None, None]
    faint = (truth >= peak / 255) & (truth <= FAINT_LEVEL * peak)
    return float(x[faint].sum() / truth.double()[faint].sum())


def halo(truth: torch.Tensor, amplitude: float) -> torch.Tensor:
    """A smooth Gaussian (σ = N/10 px, peak ``amplitude`` × each image's peak) centred N/8 px off the centre:
    emission below the 8-bit step when amplitude < 1/255."""
    N = truth.shape[-1]
    yy, xx = torch.meshgrid(torch.arange(N) - N // 2 - N // 8, torch.arange(N) - N // 2, indexing="ij")
    blob = torch.exp(-(xx**2 + yy**2) / (2 * (N / 10) ** 2))
    return amplitude * truth.flatten(1).amax(1)[:, None, None] * blob


def images_of(prior, truth: torch.Tensor, op, sigma: float, K: int, S: int, gibbs: bool,
              grid: tuple = ()) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
    """{method: PSNR of the posterior mean} and {``faint_<method>``: ``faint_ratio``} for one batch of truths
    (B, N, N) (module docstring), and the images (B, N, N) or samples (B, S, N, N) behind them, by method;
    ``grid``: further ExactRefineConfigs, each refining the same DDRM samples (``refine_<rho_max>:<rho_min>:<n>``)."""
    B = len(truth)
    den = prior
    y = simulate(truth.double(), op, sigma, make_generators([7000 + i for i in range(B)]))
    images, out = dict(baselines(y, op, sigma, CleanConfig(multiscale=multiscale.available()))), {}
    seeds = [100 + i for i in range(B)]
    for name, cfg in (("ddrm", DDRMConfig()), ("ddrm_data", DDRMConfig(data_step=True))):
        t0 = time.perf_counter()
        post = reconstruct(den, y.float(), op, sigma, cfg, make_generators(seeds), K=K, S=S, clip=False)
        images[name], out[f"{name}_s"] = post.samples, (time.perf_counter() - t0) / B
        if name == "ddrm_data":
            t0 = time.perf_counter()
            gens = make_generators([s + 2 for s in seeds])
            x = refine(den, 2 * post.samples.double() - 1, operator_step(op, y, sigma, gens), ExactRefineConfig(), gens)
            images["default"], out["default_s"] = to_image(x), out[f"{name}_s"] + (time.perf_counter() - t0) / B
            for cfg_r in grid:
                gens = make_generators([s + 2 for s in seeds])
                x = refine(den, 2 * post.samples.double() - 1, operator_step(op, y, sigma, gens), cfg_r, gens)
                out[f"refine_{cfg_r.rho_max:g}:{cfg_r.rho_min:g}:{cfg_r.iterations}"] = psnr_of_mean(to_image(x), truth)
    if gibbs:
        post = reconstruct(den, y.float(), op, sigma, SplitGibbsConfig(), make_generators(seeds), K=K, S=S)
        images["gibbs"] = post.samples
    out |= {k: psnr_of_mean(v, truth) for k, v in images.items()}
    out |= {f"faint_{k}": faint_ratio(v, truth) for k, v in images.items()}
    return out, images


def halo_recovery(prior, truth: torch.Tensor, base: dict[str, torch.Tensor], op, sigma: float, K: int, S: int,
                  amplitude: float) -> dict[str, float]:
    """{``halo_<method>``: Σ (image with the halo - image without) / Σ halo}: how much of emission added at
    ``amplitude`` × the peak (``halo``) each method puts back, the same seeds on both sides (``base``: the
    images without it, from ``images_of``)."""
    add = halo(truth, amplitude)
    _, more = images_of(prior, truth + add, op, sigma, K, S, False)

    def mean(v: torch.Tensor) -> torch.Tensor:
        return (v.mean(1) if v.dim() == 4 else v).double()

    return {f"halo_{k}": float((mean(more[k]) - mean(base[k])).sum() / add.double().sum()) for k in base if k != "dirty"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--K", type=int, default=50)
    p.add_argument("--S", type=int, default=4)
    p.add_argument("--sigma", type=float, nargs="+", default=[0.0, 0.02])
    p.add_argument("--masks", nargs="+", default=["eht", "vla"])
    p.add_argument("--gibbs", action="store_true")
    p.add_argument("--refine-grid", nargs="*", default=[], help="rho_max:rho_min:iterations entries to compare")
    p.add_argument("--halo", type=float, default=0.0,
                   help="also add a smooth halo at this fraction of the peak (e.g. 0.002, under 1/255) and report "
                        "the share of it each method recovers")
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
            out, images = images_of(prior, truth, op, sigma, args.K, args.S, args.gibbs, grid)
            rows.append({"mask": mask, "sigma": sigma, "n": len(truth), **out})
            if args.halo:
                rows[-1] |= halo_recovery(prior, truth, images, op, sigma, args.K, args.S, args.halo)
            print(json.dumps(rows[-1]), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=2)
    last = {r["mask"]: r for r in rows if r["sigma"] == max(args.sigma)}
    print(" ".join(f"{m}_{k}={last[m][k]:.2f}" for m in last for k in ("default", "clean", "multiscale", "ddrm")
                   if k in last[m]))


if __name__ == "__main__":
    main()

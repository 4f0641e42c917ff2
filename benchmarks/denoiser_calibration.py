"""Is the shipped FIRST prior's denoiser as confident as its errors?

Tweedie's second-order identity: for u = x₀ + ρ ε (model units) and the exact denoiser D(u) = E[x₀ | u],
Cov[x₀ | u] = ρ² ∂D/∂u. Averaged over data and noise, per pixel,

    E[(x₀ - D(u))²]  =  ρ² E[diag ∂D/∂u]        (exact for the exact D; "err" against "tweedie").

A network whose error exceeds ρ² diag J claims less uncertainty than it has: a posterior sampler built on
it (split Gibbs steps through D at ρ) is then narrower than its errors however well it mixes. diag J is
estimated by Hutchinson with Rademacher probes v and central differences, v ⊙ (D(u + h v) - D(u - h v)) / 2h.
The identity holds over all pixels (where the Hutchinson estimate is noisy: off-diagonal terms of J
dominate on the empty sky); over source pixels (truth above 1 % of its peak) the mask depends on x₀ and
the ratio is indicative only. "err" above ρ² means the network denoises worse than returning u itself.

    python benchmarks/denoiser_calibration.py runs/first_eval_images.npz --split val --n 16

Validation images only (the test split is for the final table). Last line:
``ratio_all@0.01=<x> ratio_src@0.01=<x> ratio_all@0.05=<x> ratio_src@0.05=<x>`` (err / tweedie).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from ddrm.diffusion.ddpm import EpsDenoiser
from ddrm.inverse.calibration import denoiser_calibration
from ddrm.inverse.metrics import source_mask
from ddrm.inverse.units import to_image, to_model
from stores.checkpoints import load_prior

RHOS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)


def check(prior, x0: torch.Tensor, rho: float, probes: int, gen: torch.Generator) -> dict:
    """Error and ρ² mean diag J over all and over source pixels (``ddrm.inverse.calibration.denoiser_calibration``)."""

    err, tw, rho_t = denoiser_calibration(EpsDenoiser(prior.model, prior.schedule, clip=False), prior.schedule,
                                          x0, rho, probes, gen)
    src = source_mask(to_image(x0)[:, 0])[:, None]
    return {"rho_t": rho_t, "err_all": float(err.mean()), "tweedie_all": float(tw.mean()),
            "err_src": float(err[src].mean()), "tweedie_src": float(tw[src].mean())}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("images")
    p.add_argument("--prior", default="first", help="a packaged prior's name or a checkpoint directory")
    p.add_argument("--split", default="val", choices=("val", "test"))
    p.add_argument("--n", type=int, default=16)
    p.add_argument("--probes", type=int, default=4)
    p.add_argument("--batch", type=int, default=16)
    args = p.parse_args()
    torch.set_num_threads(2)
    prior = load_prior(args.prior, torch.device("cpu"))
    imgs = torch.from_numpy(np.load(args.images)[args.split][:args.n].astype(np.float32) / 255)
    x0 = to_model(imgs)[:, None]
    gen = torch.Generator().manual_seed(0)
    ratios = {}
    print("rho_t    err_all   tweedie_all  ratio_all   err_src   tweedie_src  ratio_src  err_src/rho^2")
    for rho in RHOS:
        rows = [check(prior, x0[b:b + args.batch], rho, args.probes, gen)
                for b in range(0, len(x0), args.batch)]
        r = {k: float(np.mean([row[k] for row in rows])) for k in rows[0]}
        ra, rs = r["err_all"] / r["tweedie_all"], r["err_src"] / r["tweedie_src"]
        ratios[rho] = (ra, rs)
        print(f"{r['rho_t']:.4f}  {r['err_all']:.3e}  {r['tweedie_all']:.3e}  {ra:9.2f}  "
              f"{r['err_src']:.3e}  {r['tweedie_src']:.3e}  {rs:9.2f}  {r['err_src'] / r['rho_t'] ** 2:9.2f}", flush=True)
    print(" ".join(f"ratio_all@{rho:g}={ratios[rho][0]:.2f} ratio_src@{rho:g}={ratios[rho][1]:.2f}"
                   for rho in (0.01, 0.05)))


if __name__ == "__main__":
    main()

"""The shipped FIRST prior on real FIRST test images, single process:

* ``any-n``: the same test images centre-cropped or zero-padded to N = 96, 150 and 192, observed
  with the VLA Earth-rotation preset at each N (its uv pattern fitted to the grid), noiseless.
* ``paper``: the paper's masks at N = 150, noiseless and σ_y = 0.02.

For each: DDRM posterior-mean PSNR and the paper's sample-mse PSNR, CLEAN and dirty PSNR, and the
mean of the posterior mean over empty-sky pixels (truth = 0). ``--split valid`` evaluates on the
validation split (for choices), ``test`` (default) for the final table.

    python benchmarks/first_eval.py any-n --n-images 8 --K 50 --S 4
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import torch

from ddrm import DDRMConfig
from ddrm.diffusion.images import centre_crop_or_pad
from ddrm.inverse.metrics import psnr_from_mse
from ddrm.radio import array_operator
from ddrm.radio.baselines import baselines
from ddrm.radio.pipeline import posterior_of_stack
from sources.first_package import data_file, read
from stores.checkpoints import load_prior

SPLITS = {"valid": "val", "test": "test"}


def images(split: str, n: int, N: int) -> torch.Tensor:
    g = read(data_file())
    idx = [i for i in np.flatnonzero(g.split == SPLITS[split]) if g.images[i][75:225, 75:225].any()][:n]
    return torch.stack([centre_crop_or_pad(torch.from_numpy(g.images[i].astype(np.float32)) / 255.0, N) for i in idx])


def psnr(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    return psnr_from_mse(((a.double() - b.double()) ** 2).flatten(1).mean(1)).numpy()


def evaluate(prior, truth: torch.Tensor, array: str, sigma_y: float, K: int, S: int) -> dict[str, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the paper masks' known Hermitian closure
        op = array_operator(array, truth.shape[-1])
    post = posterior_of_stack(prior, truth, op, sigma_y, DDRMConfig(), K=K, S=S, batch=len(truth))
    base = baselines(post.y, op, sigma_y)
    sample_mse = ((post.samples - truth[:, None].double()) ** 2).flatten(1).mean(1)
    return {"ddrm_mean": float(psnr(post.mean, truth).mean()), "ddrm_samples": float(psnr_from_mse(sample_mse).mean()),
            "clean": float(psnr(base["clean"], truth).mean()), "dirty": float(psnr(base["dirty"], truth).mean()),
            "background": float(post.mean[truth == 0].mean()), "s_per_obs": post.seconds}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("what", choices=["any-n", "paper"])
    p.add_argument("--split", choices=sorted(SPLITS), default="test")
    p.add_argument("--n-images", type=int, default=8)
    p.add_argument("--K", type=int, default=50)
    p.add_argument("--S", type=int, default=4)
    args = p.parse_args()
    torch.set_num_threads(2)
    prior = load_prior("first", torch.device("cpu"))
    cases = [(N, "vla", 0.0) for N in (96, 150, 192)] if args.what == "any-n" else \
        [(150, a, s) for s in (0.0, 0.02) for a in ("paper-vla", "paper-eht", "paper-alma")]
    print("| N | array | σ_y | K | n | DDRM mean PSNR | DDRM sample PSNR | CLEAN | dirty | background | s/obs |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for N, array, sigma in cases:
        truth = images(args.split, args.n_images, N)
        r = evaluate(prior, truth, array, sigma, args.K, args.S)
        print(f"| {N} | {array} | {sigma:g} | {args.K} | {len(truth)} | {r['ddrm_mean']:.2f} | {r['ddrm_samples']:.2f} | "
              f"{r['clean']:.2f} | {r['dirty']:.2f} | {r['background']:.4f} | {r['s_per_obs']:.1f} |", flush=True)


if __name__ == "__main__":
    main()

"""Choosing the FIRST prior's U-Net by measurement: each candidate trains for the same
wall-clock budget on the train split (one process, 2 threads, the recipe's random crops), then
DDRM with its EMA weights reconstructs validation images (valid split only) observed with the
paper's VLA mask, noiseless, and we compare posterior-mean PSNR with CLEAN's.

    python benchmarks/prior_candidates.py --dataset runs/data/first-<hash>.zarr [--seconds 300]

Prints per candidate: parameters, samples/s, loss at the end, valid PSNR (mean of S samples'
mean) and the background level; the last line names the best candidate.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
import torch

from configs import train_preset
from ddrm.diffusion.ddpm import EMA, EpsDenoiser
from ddrm.diffusion.training import make_optimizer, train_step
from ddrm.diffusion.unet import UNET_PRESETS, UNet, UNetConfig
from ddrm.inverse.metrics import all_metrics, psnr_from_mse
from ddrm.inverse.samplers import DDRMConfig
from ddrm.inverse.units import to_model
from ddrm.radio import array_operator
from ddrm.radio.baselines import baselines
from ddrm.radio.pipeline import posterior_of_stack
from ddrm.seeding import derive_seed
from stores.dataset import Dataset
from tasks.train_worker import training_batch

CANDIDATES = {
    "tiny-pixel (16, 1-2-2)": UNetConfig(base_channels=16, channel_mult=(1, 2, 2), num_res_blocks=1,
                                         attention_levels=(), norm="pixel", mid_attention=False),
    "small-pixel (24, 1-2-2-4)": UNetConfig(base_channels=24, channel_mult=(1, 2, 2, 4), num_res_blocks=1,
                                            attention_levels=(), norm="pixel", mid_attention=False),
    "first (32, 1-2-2-4)": UNET_PRESETS["first"],
    "tiny-deep (16, 1-2-2-4)": UNetConfig(base_channels=16, channel_mult=(1, 2, 2, 4), num_res_blocks=1,
                                          attention_levels=(), norm="pixel", mid_attention=False),
    "deeper (16, 1-2-2-4-4)": UNetConfig(base_channels=16, channel_mult=(1, 2, 2, 4, 4), num_res_blocks=1,
                                         attention_levels=(), norm="pixel", mid_attention=False),
    "tiny-2blocks (16, 1-2-2, 2 res-blocks)": UNetConfig(base_channels=16, channel_mult=(1, 2, 2), num_res_blocks=2,
                                                         attention_levels=(), norm="pixel", mid_attention=False),
}


def train_for(unet: UNetConfig, data: torch.Tensor, seconds: float) -> tuple[EMA, int, float, float]:
    """Train from scratch for ``seconds``; (EMA, steps, samples/s, mean loss of the last 50 steps)."""
    cfg = train_preset("first", unet=unet)
    torch.manual_seed(0)
    model = UNet(unet)
    ema, opt = EMA(model, 0.99), make_optimizer(model, replace(cfg.optim, lr=1e-3))
    optim = replace(cfg.optim, lr=1e-3, warmup_steps=50, steps=10**9)
    g, losses, seen, t0, step = torch.Generator(), [], 0, time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        g.manual_seed(derive_seed(0, 0, step))
        x0 = training_batch(data, cfg, step, g)
        losses.append(train_step(model, ema, opt, x0, cfg.schedule, g, step, optim))
        seen, step = seen + x0.shape[0], step + 1
    return ema, step, seen / (time.perf_counter() - t0), float(np.mean(losses[-50:]))


def evaluate(ema: EMA, truth: torch.Tensor, K: int = 20, S: int = 2) -> dict[str, float]:
    op = array_operator("paper-vla", truth.shape[-1])
    schedule = train_preset("first").schedule
    post = posterior_of_stack(EpsDenoiser(ema.model, schedule), truth, op, 0.0, DDRMConfig(), K=K, S=S,
                              batch=len(truth))
    clean = baselines(post.y, op, 0.0)["clean"].double()
    ddrm, base = all_metrics(post.samples, truth.double()), all_metrics(clean[:, None], truth.double())
    return {"psnr_mean": float(psnr_from_mse(ddrm["mse_mean"]).mean()), "clean_psnr": float(base["psnr"].mean()),
            "background": float(post.mean[truth == 0].mean())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", required=True)
    p.add_argument("--seconds", type=float, default=300)
    p.add_argument("--n-valid", type=int, default=4)
    p.add_argument("--only", nargs="+", help="candidate names to run (default: all)")
    args = p.parse_args()
    torch.set_num_threads(2)
    data = Dataset(args.dataset)
    train = to_model(torch.from_numpy(data.read(data.split("train")))[:, None])
    valid = torch.from_numpy(data.read(data.split("val")[:: max(1, len(data.split("val")) // args.n_valid)][:args.n_valid]))
    best = None
    for name, unet in CANDIDATES.items():
        if args.only and name.split(" ")[0] not in args.only:
            continue
        ema, steps, rate, loss = train_for(unet, train, args.seconds)
        m = evaluate(ema, valid)
        params = sum(q.numel() for q in ema.model.parameters()) / 1e6
        print(f"{name}: {params:.2f} M params, {steps} steps, {rate:.1f} samples/s, loss {loss:.4f}, valid PSNR "
              f"{m['psnr_mean']:.2f} dB (CLEAN {m['clean_psnr']:.2f}), background {m['background']:.4f}", flush=True)
        if best is None or m["psnr_mean"] > best[1]:
            best = (name, m["psnr_mean"])
    print(f"best={best[0]!r} valid_psnr={best[1]:.2f}")


if __name__ == "__main__":
    main()

"""Does more training at small noise levels make the shipped prior as confident as its errors?

The shipped FIRST prior was trained 7000 steps with t ~ U{0..999}: only 7 of the 1000 timesteps have
σ_t <= 0.02 and 56 have σ_t <= 0.1 (cosine schedule), yet split Gibbs spends its last quarter of
iterations at ρ_min = 0.01 (t = 1), where the Tweedie check finds the network worse than the identity.
This continues the shipped recipe (its EMA weights, windows of 64-128 px with area-scaled batches, the 8
symmetries and ±2 px shifts, FIRST *train* split only) with t drawn from the small-noise timesteps
(σ_t <= ``--small-sigma``) with probability ``--small-frac`` and uniformly otherwise, then writes a
prior checkpoint that ``denoiser_calibration.py --prior`` and ``gibbs_tuning.py --prior`` read.

    python benchmarks/prior_finetune.py --out runs/priors/first-smallsigma --steps 2400 --minutes 50

With ``--shrink-prob P`` a share P of the windows has its source shrunk into empty sky by a log-uniform factor
in [``--shrink-min``, 1] (``ddrm.diffusion.training.shrink``): the scale augmentation for compact (VLBI) sources. The
compact prior's recipe (a 2-core CPU, one thread, beside other work; 2026-12-06):

    OMP_NUM_THREADS=1 python benchmarks/prior_finetune.py --out runs/priors/first-shrink --steps 6000 \
        --minutes 125 --lr 2e-4 --small-frac 0 --shrink-prob 0.5 --shrink-min 0.08 --threads 1

Resumes from ``--out`` (weights, EMA, optimiser, step) and stops at ``--steps`` or ``--minutes``,
whichever comes first. Last line: ``steps=<n> samples_per_s=<x> loss_small=<x> loss_uniform=<x>``
(ε-losses of the last 200 steps, each step's loss weighted by its share of small-noise or uniform draws).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time

import numpy as np
import torch

from ddrm.diffusion.ddpm import EMA
from ddrm.diffusion.training import OptimConfig, augment, crop_batch_size, lr_at, random_crops, shrink, train_step
from ddrm.diffusion.unet import UNet
from ddrm.inverse.units import to_model
from sources.first_package import data_file, read, split_crops
from stores.checkpoints import WEIGHTS, read_meta, read_state, write_checkpoint


def train_images() -> torch.Tensor:
    """FIRST train-split galaxies (n, 1, 150, 150) in model units, by the store's rule (``split_crops``)."""
    return to_model(torch.from_numpy(split_crops(read(data_file()), "train")[1].astype(np.float32) / 255))[:, None]


def draw_t(n: int, small: int, frac: float, T: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(t (n,), is_small (n,)): t ~ U{0..small-1} with probability frac, else U{0..T-1}."""
    is_small = torch.rand(n, generator=gen) < frac
    t = torch.where(is_small, torch.randint(0, small, (n,), generator=gen), torch.randint(0, T, (n,), generator=gen))
    return t, is_small


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=2400)
    p.add_argument("--minutes", type=float, default=50)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--small-sigma", type=float, default=0.1)
    p.add_argument("--small-frac", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--shrink-prob", type=float, default=0.0, help="share of windows shrunk into empty sky")
    p.add_argument("--shrink-min", type=float, default=0.08, help="smallest shrink factor (log-uniform to 1)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    meta = read_meta("first")
    optim = OptimConfig(steps=args.steps, lr=args.lr, warmup_steps=50, ema_decay=0.999)
    model = UNet(meta.unet)
    resume = os.path.exists(os.path.join(args.out, WEIGHTS))
    state = read_state(args.out if resume else "first")
    model.load_state_dict(state["model"] if resume else state["ema"])
    ema = EMA(model, optim.ema_decay)
    ema.model.load_state_dict(state["ema"])
    opt = torch.optim.AdamW(model.parameters(), lr=optim.lr)
    if resume:
        opt.load_state_dict(state["optimizer"])
    step0 = int(state["step"]) - meta.step if resume else 0
    x = train_images()
    sched, crops, batch = meta.schedule, tuple(meta.train["crop_sizes"]), int(meta.train["batch_size"])
    small = int((sched.sigmas <= args.small_sigma).sum())
    gen = torch.Generator().manual_seed(args.seed + step0)
    print(f"{len(x)} train images; small-noise timesteps 0..{small - 1} (sigma <= {args.small_sigma}); "
          f"starting at fine-tune step {step0}")
    t0, seen, losses, step = time.perf_counter(), 0, [], step0
    model.train()
    for step in range(step0, args.steps):
        if time.perf_counter() - t0 > 60 * args.minutes:
            break
        size = crops[int(torch.randint(0, len(crops), (1,), generator=gen))]
        n = crop_batch_size(batch, crops, size)
        x0 = random_crops(augment(x[torch.randint(0, len(x), (n,), generator=gen)], gen, int(meta.train["max_shift"])),
                          size, gen)
        if args.shrink_prob:
            x0 = shrink(x0, gen, args.shrink_min, args.shrink_prob)
        t, is_small = draw_t(n, small, args.small_frac, sched.T, gen)
        loss = train_step(model, ema, opt, x0, sched, gen, step, optim, t=t)
        seen += n
        losses.append((loss, float(is_small.float().mean())))
        if (step + 1) % 100 == 0 or step + 1 == args.steps:
            rate = seen / (time.perf_counter() - t0)
            print(f"step {step + 1}/{args.steps} loss {np.mean([l for l, _ in losses[-100:]]):.5f} "
                  f"lr {lr_at(step, optim):.2e} {rate:.1f} samples/s", flush=True)
            save(args.out, model, ema, opt, meta, step + 1, args)
    save(args.out, model, ema, opt, meta, step + 1, args)
    last = losses[-200:]
    # a batch's loss mixes both kinds; weight by its share of small-noise draws
    ws = np.array([f for _, f in last])
    ls = np.array([l for l, _ in last])
    print(f"steps={step + 1} samples_per_s={seen / (time.perf_counter() - t0):.1f} "
          f"loss_small={float((ls * ws).sum() / max(ws.sum(), 1e-9)):.5f} "
          f"loss_uniform={float((ls * (1 - ws)).sum() / max((1 - ws).sum(), 1e-9)):.5f}")


def save(out: str, model, ema, opt, meta, step: int, args) -> None:
    """A prior checkpoint (model.pt with EMA, weights, optimiser; prior.json) the stores can load."""
    train = {**meta.train, "finetune": {k: v for k, v in vars(args).items() if k != "out"}}
    write_checkpoint(out, {"ema": ema.state_dict(), "model": model.state_dict(), "optimizer": opt.state_dict(),
                           "step": meta.step + step}, dataclasses.replace(meta, train=train, step=meta.step + step))


if __name__ == "__main__":
    main()

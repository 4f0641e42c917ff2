"""Ray Train's ``train_loop_per_worker`` for the DDPM prior (DDP over 1..N workers, CPU or GPU).

Rank r of W trains on train-split images r, r+W, ... of the dataset store, with its own
generator reseeded per step from (seed, r, step), so a resumed run draws exactly what the
uninterrupted one would have. Every rank reports metrics each ``report_every`` steps; rank 0
attaches a checkpoint each ``checkpoint_every`` steps and at the end.
"""

from __future__ import annotations

import logging
import pickle
import resource
import tempfile
import time
from typing import Any, Optional

import numpy as np
import ray.train
import ray.train.torch
import torch

from configs import TrainConfig
from ddrm.diffusion.ddpm import EMA
from ddrm.diffusion.training import augment, crop_batch_size, lr_at, make_optimizer, random_crops, shrink, train_step
from ddrm.diffusion.unet import UNet
from ddrm.inverse.units import to_model
from ddrm.seeding import derive_seed
from runtime.environment import configure_compute
from stores.checkpoints import PriorMeta, list_checkpoints, read_meta, read_state, write_checkpoint
from stores.dataset import Dataset

log = logging.getLogger(__name__)


def load_shard(dataset_url: str, rank: int, world: int, device: torch.device,
               storage_options: Optional[dict] = None) -> torch.Tensor:
    """This rank's train images (n_r, 1, N, N) in model space [-1, 1] on ``device``."""
    data = Dataset(dataset_url, storage_options)
    mine = data.split("train")[rank::world]
    if len(mine) == 0:
        raise ValueError(f"{dataset_url}: rank {rank} of {world} has no training images")
    return to_model(torch.from_numpy(data.read(mine))[:, None]).to(device)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _resume(model: UNet, ema: EMA, optimizer: torch.optim.Optimizer, cfg: TrainConfig, run_dir: Optional[str],
            storage_options: Optional[dict]) -> int:
    """Load the newest checkpoint and return its step (0: none). Candidates: Ray Train's latest after a
    worker failure (FailureConfig), and the complete checkpoints in ``run_dir`` on storage: an earlier,
    interrupted run's, or one this run uploaded but Ray had not registered when a worker died (Ray then
    restarts with an older one, or none). A checkpoint that does not load (cut short) is passed over."""
    state = None
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            read_meta(directory, cache=False).check(checkpoint.path, unet=cfg.unet, schedule=cfg.schedule)
            state = read_state(directory)
    stored = list_checkpoints(run_dir, storage_options) if run_dir else []
    for step, url in reversed(stored):  # newest first
        if state is not None and step <= state["step"]:
            break
        read_meta(url, storage_options, cache=False).check(url, unet=cfg.unet, schedule=cfg.schedule)
        try:
            state = read_state(url, storage_options)
            break
        except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as err:  # cut short, checksum
            log.warning("checkpoint %s does not load (%s); trying an older one", url, err)
    if state is None:
        return 0
    model.load_state_dict(state["model"])
    ema.load_state_dict(state["ema"])
    optimizer.load_state_dict(state["optimizer"])
    return int(state["step"])


def training_batch(data: torch.Tensor, cfg: TrainConfig, step: int, generator: torch.Generator) -> torch.Tensor:
    """Step ``step``'s batch: random images, random crops if ``cfg.crop_sizes``, then augmentation (the
    symmetries, and the scale augmentation if ``cfg.shrink_prob``)."""
    size = cfg.crop_sizes[step % len(cfg.crop_sizes)] if cfg.crop_sizes else None
    n = crop_batch_size(cfg.batch_size, cfg.crop_sizes, size) if size else cfg.batch_size
    idx = torch.randint(0, len(data), (n,), generator=generator, device=generator.device)
    x = data[idx.to(data.device)]
    x = augment(random_crops(x, size, generator) if size else x, generator, cfg.max_shift)
    return shrink(x, generator, cfg.shrink_min, cfg.shrink_prob) if cfg.shrink_prob else x


def _report(metrics: dict, rank: int, state: Optional[dict], meta: PriorMeta) -> None:
    if rank == 0 and state is not None:
        with tempfile.TemporaryDirectory() as directory:
            write_checkpoint(directory, state, meta)
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(directory))
    else:
        ray.train.report(metrics)


def train_loop_per_worker(loop_config: dict[str, Any]) -> None:
    """loop_config: ``train`` (TrainConfig), ``dataset`` (URL), ``meta`` (for prior.json),
    ``progress`` (optional actor with ``push``), ``storage_options``, ``run_dir`` (the run's checkpoint
    directory, resumed from; None: start afresh)."""
    cfg: TrainConfig = loop_config["train"]
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    configure_compute(cfg.cpus_per_worker)
    device = ray.train.torch.get_device()
    data = load_shard(loop_config["dataset"], rank, world, device, loop_config.get("storage_options"))

    torch.manual_seed(cfg.seed)  # identical initial weights on every rank
    model = UNet(cfg.unet)
    ema = EMA(model, cfg.optim.ema_decay)
    optimizer = make_optimizer(model, cfg.optim)
    start = _resume(model, ema, optimizer, cfg, loop_config.get("run_dir"), loop_config.get("storage_options"))
    ddp_model = ray.train.torch.prepare_model(model)
    ema.model.to(device)
    autocast = torch.bfloat16 if device.type == "cuda" and cfg.mixed_precision else None
    generator = torch.Generator(device=device)
    losses, seen, t_window = [], 0, time.perf_counter()
    for step in range(start, cfg.optim.steps):
        generator.manual_seed(derive_seed(cfg.seed, rank, step))
        x0 = training_batch(data, cfg, step, generator)
        losses.append(train_step(ddp_model, ema, optimizer, x0, cfg.schedule, generator, step, cfg.optim, autocast))
        seen += x0.shape[0]
        done = step + 1
        if done % cfg.report_every and done != cfg.optim.steps:
            continue
        elapsed = time.perf_counter() - t_window
        metrics = {"step": done, "start_step": start, "loss": float(np.mean(losses)), "lr": lr_at(step, cfg.optim),
                   "samples_per_s": seen * world / elapsed, "window_s": elapsed, "rank": rank,
                   "world_size": world, "peak_rss_mb": peak_rss_mb()}
        if rank == 0 and loop_config.get("progress") is not None:
            loop_config["progress"].push.remote(metrics)
        checkpoint_now = done % cfg.checkpoint_every == 0 or done == cfg.optim.steps
        state = {"model": model.state_dict(), "ema": ema.state_dict(), "optimizer": optimizer.state_dict(),
                 "step": done} if checkpoint_now and rank == 0 else None
        _report(metrics, rank, state, loop_config["meta"])
        losses, seen, t_window = [], 0, time.perf_counter()


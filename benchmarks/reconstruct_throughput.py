"""Observations/s through the reconstruction actor pool, 1 vs 2 actors of one thread each, against
a plain single-process loop of one observation at a time with one thread.

Same checkpoint (the tiny demo U-Net), N=64, K=20, S=4, 96 VLA observations; CPU actors take
one observation per call (batching is slower per image on a CPU), two calls queued on each. Every timing
includes its own start-up (actors: process start, checkpoint load, operator build; loop: checkpoint load,
operator build). This machine's speed drifts by ±20 % over minutes, so the 1-actor pool is timed before
and after the loop (A B A) and their mean is compared. Goals: scaling >= 1.6 and the 1-actor pool within
10% of the loop. ``--split`` also times the actor's own work in this process (where the pool's time goes).
Last line: ``recon_obs_per_s_1actor=<x> recon_obs_per_s_2actors=<x> recon_obs_per_s_loop=<x> scaling=<x.xx>
pool_over_loop=<x.xxx>``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import replace

import numpy as np
import torch
from prefect import flow

from configs import prepare_preset, reconstruct_preset
from ddrm.diffusion.schedule import Schedule
from ddrm.diffusion.unet import UNet, unet_preset
from ddrm.inverse.samplers import make_generators
from ddrm.radio import array_operator
from ddrm.radio.pipeline import simulate_and_score
from flows.prepare import prepare_dataset
from runtime.environment import configure_local_environment
from runtime.ray_cluster import ensure_ray
from stores import survey as ss
from stores.checkpoints import PriorMeta, write_checkpoint
from stores.dataset import Dataset
from tasks.reconstruct import Reconstructor, load_denoiser, plan_survey, run_actor_pool

CFG = reconstruct_preset("demo", name="bench", arrays=("vla",), K_values=(20,), samples=4, n_images=96)


def loop(checkpoint: str, dataset: str) -> float:
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    data = Dataset(dataset)
    denoiser = load_denoiser(checkpoint, data, torch.device("cpu"))
    op = array_operator("vla", data.N)
    for img in data.split("test")[:CFG.n_images]:
        noise = CFG.noise_seed(int(img), "vla")
        sample = {s.name: make_generators([CFG.sampler_seed(int(img), "vla", 20, s.name)]) for s in CFG.samplers}
        simulate_and_score(denoiser, torch.from_numpy(data.read([img])), op, sigma_y=CFG.sigma_y[0],
                           samplers=CFG.samplers, K=20, S=CFG.samples, noise_generators=make_generators([noise]),
                           sample_generators=sample, clean=CFG.clean)
    return CFG.n_images / (time.perf_counter() - t0)


@flow
def in_process(checkpoint: str, dataset: str, root: str) -> dict[str, float]:
    """The actor's own work without Ray: one ``Reconstructor`` in this process, batch by batch, as the pool
    feeds it (compute and the survey store's writes); its start-up and the store's creation timed apart."""
    torch.set_num_threads(1)
    cfg = replace(CFG, num_actors=1, cpus_per_actor=1)
    plan = plan_survey(cfg, checkpoint, dataset, root)
    t0 = time.perf_counter()
    worker = Reconstructor(checkpoint, dataset, plan.url, cfg, None, 1)
    start = time.perf_counter() - t0
    for batch in ss.pending_batches(plan.url, 1):
        worker.run(batch)
    return {"obs_per_s": CFG.n_images / (time.perf_counter() - t0), "startup_s": start}


@flow
def pool(checkpoint: str, dataset: str, root: str, actors: int) -> float:
    cfg = replace(CFG, num_actors=actors, cpus_per_actor=1)
    plan = plan_survey(cfg, checkpoint, dataset, root)
    t0 = time.perf_counter()
    run_actor_pool(plan, cfg, checkpoint, dataset)
    return CFG.n_images / (time.perf_counter() - t0)


def main() -> None:
    split = "--split" in sys.argv
    configure_local_environment()
    ensure_ray(num_cpus=2)
    with tempfile.TemporaryDirectory() as root:
        dataset = prepare_dataset(prepare_preset("demo"), root=root)
        model = UNet(unet_preset("tiny"))
        checkpoint = f"{root}/checkpoint"
        write_checkpoint(checkpoint, {"model": model.state_dict(), "ema": model.state_dict(), "optimizer": {},
                                      "step": 0}, PriorMeta(kind="ddpm", N=64, schedule=Schedule(), unet=model.config))
        before = pool(checkpoint, dataset, f"{root}/a1", 1)
        rates = {"loop": loop(checkpoint, dataset)}
        after = pool(checkpoint, dataset, f"{root}/a1b", 1)
        rates[1], rates[2] = (before + after) / 2, pool(checkpoint, dataset, f"{root}/a2", 2)
        inproc = in_process(checkpoint, dataset, f"{root}/in") if split else None
    print(f"1 actor {before:.3f} then {after:.3f} obs/s (mean {rates[1]:.3f}), 2 actors {rates[2]:.3f} obs/s, "
          f"loop {rates['loop']:.3f} obs/s; 1-actor pool / loop = {rates[1] / rates['loop']:.3f}")
    if inproc:
        print(f"where the pool's time goes: the actor's work in this process (compute + store writes) "
              f"{inproc['obs_per_s']:.3f} obs/s = {inproc['obs_per_s'] / rates['loop']:.3f} of the loop (its start-up "
              f"{inproc['startup_s']:.1f} s); Ray and the actor's process start the rest, "
              f"{rates[1] / inproc['obs_per_s']:.3f} of that")
    print(f"recon_obs_per_s_1actor={rates[1]:.3f} recon_obs_per_s_2actors={rates[2]:.3f} "
          f"recon_obs_per_s_loop={rates['loop']:.3f} scaling={rates[2] / rates[1]:.2f} "
          f"pool_over_loop={rates[1] / rates['loop']:.3f}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()

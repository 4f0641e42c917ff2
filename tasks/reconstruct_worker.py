"""The reconstruction actor's work, without Prefect: a Ray worker imports this module, torch, the library
and the stores, not Prefect (whose import alone adds about 1.6 s to each actor's start).

``Reconstructor`` loads the prior once, builds and caches one operator per array, and reconstructs batches
of a survey store's observations, writing each to the store as soon as it is done.
"""

from __future__ import annotations

import warnings
from typing import Any, Optional

import numpy as np
import ray
import torch

from configs import ReconstructConfig
from ddrm.diffusion.ddpm import Denoiser
from ddrm.diffusion.schedule import Schedule
from ddrm.inverse.priors import GaussianFourierPrior
from ddrm.inverse.samplers import make_generators
from ddrm.inverse.units import to_model
from ddrm.radio import array_operator
from ddrm.radio.pipeline import simulate_and_score
from runtime.environment import configure_compute
from stores import storage
from stores import survey as ss
from stores.checkpoints import PriorMeta, load_prior, read_meta
from stores.dataset import Dataset
from stores.storage import StorageOptions

ANALYTIC_PRIOR = "gaussian"
ANALYTIC_FIT_IMAGES = 2048


def _analytic_meta(dataset: Dataset) -> PriorMeta:
    return PriorMeta(kind=ANALYTIC_PRIOR, N=dataset.N, schedule=Schedule(), dataset=dataset.url,
                     dataset_hash=dataset.meta["config_hash"])


def prior_meta(prior: str, dataset: Dataset, storage_options: StorageOptions = None) -> PriorMeta:
    """What identifies the prior (for the survey's key): a checkpoint's PriorMeta, or the analytic prior's."""
    return _analytic_meta(dataset) if prior == ANALYTIC_PRIOR else read_meta(prior, storage_options)


def load_denoiser(prior: str, dataset: Dataset, device: torch.device,
                  storage_options: StorageOptions = None) -> Denoiser:
    """The prior of a checkpoint URL or packaged name, or of ``"gaussian"``: the stationary Gaussian prior
    fitted to (up to 2048 of) the dataset's training images, with its exact denoiser (a baseline). Either
    carries its schedule."""
    if prior == ANALYTIC_PRIOR:
        train = dataset.split("train")[:ANALYTIC_FIT_IMAGES]
        return GaussianFourierPrior.fit(to_model(torch.from_numpy(dataset.read(train))), _analytic_meta(dataset).schedule)
    return load_prior(prior, device, storage_options=storage_options)


class Reconstructor:
    """Loads the prior once; builds and caches one operator per array; reconstructs batches.
    A plain class, made an actor by ``RemoteReconstructor``, so Ray pickles it by reference."""

    def __init__(self, checkpoint: str, dataset: str, survey: str, config: ReconstructConfig,
                 storage_options: StorageOptions, threads: int) -> None:
        configure_compute(threads)
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.dataset = Dataset(dataset, storage_options)
        self.prior = load_denoiser(checkpoint, self.dataset, self.device, storage_options)
        self.survey, self.config, self.storage_options = survey, config, storage_options
        self.ops: dict[str, Any] = {}
        self.writer: Optional[ss.ObservationWriter] = None

    def get_operator(self, array: str):
        if array not in self.ops:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # the paper masks' Hermitian closure, known
                self.ops[array] = array_operator(array, self.dataset.N)
        return self.ops[array]

    def run(self, batch: ss.Batch) -> list[dict]:
        """Reconstruct one batch with every sampler and write each observation; returns their metric rows."""
        cfg = self.config
        truth = torch.from_numpy(self.dataset.read(np.array(batch.images))).to(self.device)
        sample_generators = {name: make_generators([cfg.sampler_seed(img, batch.array, batch.K, name)
                                                    for img in batch.images], self.device)
                             for name in cfg.sampler_names}
        result = simulate_and_score(
            self.prior, truth, self.get_operator(batch.array), batch.sigma_y, cfg.samplers, K=batch.K, S=cfg.samples,
            noise_generators=make_generators([cfg.noise_seed(img, batch.array) for img in batch.images],
                                             self.device),
            sample_generators=sample_generators, clean=cfg.clean)
        rows = []
        for b, i in enumerate(batch.obs):
            row = {k: float(v[b]) for k, v in result.metrics.items()} | {"sigma_y": batch.sigma_y, "S": cfg.samples}
            images = {name: image[b].cpu().numpy() for name, image in result.images.items()}
            for name, post in result.posteriors.items():
                images |= {f"{name}_mean": post.mean[b].cpu().numpy(), f"{name}_std": post.std[b].cpu().numpy()}
            samples = {name: post.samples[b].cpu().numpy() for name, post in result.posteriors.items()} \
                if cfg.save_samples else None
            try:
                self.writer = self.writer or ss.ObservationWriter(self.survey, self.storage_options)
                self.writer.write(i, images, row, samples)
            except Exception as err:  # an S3 endpoint that stopped answering: say which, fail the run
                if not storage.is_remote(self.survey):
                    raise
                raise storage.StoreUnreachableError(
                    f"survey store {self.survey} at {storage.endpoint_of(self.survey, self.storage_options)} failed "
                    f"while writing observation {i} ({type(err).__name__}: {str(err).splitlines()[0][:160]}); "
                    f"observations not marked done are recomputed by a rerun") from None
            rows.append({"obs": i, "id": cfg.obs_id(batch.array, batch.sigma_y, batch.K, batch.images[b]), **row})
        return rows


# no restarts: a dead actor's work is requeued to the living by ``run_pool`` (a restart would wait for
# resources that a node's death took away)
RemoteReconstructor = ray.remote(max_restarts=0, max_task_retries=0)(Reconstructor)

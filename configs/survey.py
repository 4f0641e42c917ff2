"""Survey reconstruction (``ReconstructConfig``) and the whole survey (``SurveyConfig``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from ddrm.config import Config
from ddrm.inverse.samplers import DDRMConfig, SamplerConfig
from ddrm.radio import array_names, array_spec
from ddrm.radio.baselines import CleanConfig
from ddrm.seeding import derive_seed

from .common import PACKAGED_PRIORS, check_name, from_preset
from .prepare import PREPARE_PRESETS, PrepareConfig
from .train import TRAIN_PRESETS, TrainConfig

GPU_BATCH = 16  # observations per GPU batch: B·S = 16·8 images of 150² fit an 80 GB GPU with the paper U-Net
KEY_VERSION = 3  # survey-key version: 2 = seeds from array names, 3 = S-corrected and source-pixel coverage, nfe; never resume a store of another


@dataclass(frozen=True)
class ReconstructConfig(Config):
    """A survey of simulated observations: the first ``n_images`` test-split images × ``arrays`` ×
    noise levels ``sigma_y`` (model space, per measured coordinate) × ``K_values``; every sampler of
    ``samplers`` draws S = ``samples`` posterior samples of the same y, beside dirty and CLEAN images.
    ``n_calibration`` validation-split images are observed the same way, only to fit the conformal
    scale of the posterior std per (array, σ_y, K, sampler) (``ddrm.inverse.calibration``); tables use test images only.

    Arrays are names in the catalogue (``ddrm.radio.ARRAYS``): Earth-rotation presets
    (``vla``, ``eht``, ``alma``) or mask-only arrays (the paper's ``paper-vla``, ...; N = 150 only).
    Observations are processed in batches of ``batch_size`` with the same array and K by a pool of
    actors (``num_actors`` None: fill the cluster). ``batch_size`` None: 1 on CPU actors (batching is
    slower per image there) and ``GPU_BATCH`` on GPU actors.
    """

    name: str = "survey"
    arrays: tuple[str, ...] = ("vla", "eht", "alma")
    K_values: tuple[int, ...] = (20, 100)
    samples: int = 8
    sigma_y: tuple[float, ...] = (0.02,)
    samplers: tuple[SamplerConfig, ...] = (DDRMConfig(),)
    clean: CleanConfig = CleanConfig()
    n_images: int = 16
    n_calibration: int = 0
    seed: int = 0
    batch_size: Optional[int] = None
    num_actors: Optional[int] = None
    cpus_per_actor: int = 1
    use_gpu: Optional[bool] = None
    save_samples: bool = False

    def __post_init__(self) -> None:
        check_name(self.name)
        for a in self.arrays:
            array_spec(a)  # ValueError naming the catalogue
        if not self.arrays or len(set(self.arrays)) != len(self.arrays):
            raise ValueError(f"arrays must be distinct and at least one, got {list(self.arrays)}")
        if not self.K_values or any(k < 1 for k in self.K_values) or len(set(self.K_values)) != len(self.K_values):
            raise ValueError(f"K values must be distinct and >= 1, got {list(self.K_values)}")
        if self.samples < 1 or self.n_images < 1 or (self.batch_size or 1) < 1 or self.cpus_per_actor < 1:
            raise ValueError("samples, n_images, batch_size and cpus_per_actor must be >= 1")
        if self.n_calibration < 0 or (self.n_calibration and self.samples < 2):
            raise ValueError(f"n_calibration must be >= 0 and needs samples >= 2, got {self.n_calibration}, {self.samples}")
        if not isinstance(self.sigma_y, tuple) or not self.sigma_y or len(set(self.sigma_y)) != len(self.sigma_y) or \
                not all(isinstance(s, (int, float)) and s >= 0 for s in self.sigma_y):
            raise ValueError(f"sigma_y must be distinct noise levels >= 0, at least one, got {self.sigma_y!r}")
        names = [s.name for s in self.samplers]
        if not names or len(set(names)) != len(names) or not all(isinstance(s, SamplerConfig) for s in self.samplers):
            raise ValueError(f"samplers must be distinct SamplerConfig instances, at least one, got {names}")
        if self.num_actors is not None and self.num_actors < 1:
            raise ValueError(f"num_actors must be >= 1, got {self.num_actors}")

    @property
    def sampler_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.samplers)

    def plan(self, test_images: np.ndarray,
             val_images: np.ndarray = np.zeros(0, dtype=np.int64)) -> tuple[np.ndarray, ...]:
        """The experiment: (obs_image, obs_array, obs_sigma, obs_K, obs_split) for arrays × noise levels × K values
        × the first n_images test images, then the same for the first n_calibration validation images (split 1)."""
        images = np.asarray(test_images[:self.n_images], dtype=np.int64)
        if len(images) < self.n_images:
            raise ValueError(f"the dataset's test split has {len(images)} images; the survey asks for {self.n_images}")
        calib = np.asarray(val_images[:self.n_calibration], dtype=np.int64)
        if len(calib) < self.n_calibration:
            raise ValueError(f"the dataset's validation split has {len(calib)} images; the survey asks for "
                             f"{self.n_calibration} calibration images")
        grid = [(a, s, k, img, split) for split, imgs in ((0, images), (1, calib)) for a in range(len(self.arrays))
                for s in range(len(self.sigma_y)) for k in self.K_values for img in imgs]
        obs_array, obs_sigma, obs_K, obs_image, obs_split = (np.array(v) for v in zip(*grid))
        return obs_image.astype(np.int64), obs_array.astype(np.int16), obs_sigma.astype(np.int16), \
            obs_K.astype(np.int32), obs_split.astype(np.int8)

    def noise_seed(self, image: int, array: str) -> int:
        """The noise of observation (image, array): by the array's *name*, the same for every K and sampler."""
        return derive_seed(self.seed, "noise", image, array)

    def sampler_seed(self, image: int, array: str, K: int, sampler: str) -> int:
        """The random stream of one sampler on one observation."""
        return derive_seed(self.seed, "sample", image, array, K, sampler)

    @staticmethod
    def obs_id(array: str, sigma_y: float, K: int, image: int) -> str:
        """An observation's name: ``<array>/sigma<σ_y>/K<K>/img<index>``."""
        return f"{array}/sigma{sigma_y:g}/K{K}/img{image:06d}"

    def content_key(self) -> dict:
        """What determines the results (not the pool's size or batching of the work)."""
        d = self.to_dict()
        for k in ("num_actors", "cpus_per_actor", "use_gpu"):
            d.pop(k)
        if not d["clean"]["multiscale"]:  # surveys without it keep the keys they had before the option
            d["clean"].pop("multiscale")
        return {**d, "key_version": KEY_VERSION}


RECONSTRUCT_PRESETS: dict[str, ReconstructConfig] = {
    "demo": ReconstructConfig(name="survey-demo", K_values=(20, 50), samples=8, n_images=8),
    # the paper's table: its masks, noiseless, 200 test images, S = 128 (docs/design.md §8)
    "paper": ReconstructConfig(name="survey-paper", arrays=("paper-vla", "paper-eht", "paper-alma"),
                               K_values=(10, 50, 100, 500, 1000), samples=128, sigma_y=(0.0,),
                               n_images=200, batch_size=1),  # B·S = 128 images per denoiser call already
    # the paper's table and beyond on a 2-core CPU (<= 15 min): its masks and our Earth-rotation
    # presets, noiseless and noisy, K = 10..100, the shipped FIRST prior, as many test images as fit
    "first": ReconstructConfig(name="survey-first", arrays=("paper-vla", "paper-eht", "paper-alma", "vla", "eht",
                                                            "alma"),
                               K_values=(10, 20, 50, 100), samples=2, sigma_y=(0.0, 0.02), n_images=4),
}


def reconstruct_preset(preset: str, /, **overrides: Any) -> ReconstructConfig:
    """A named preset with overrides; unknown presets or fields raise ValueError."""
    return from_preset(RECONSTRUCT_PRESETS, "reconstruct", preset, overrides)


PRIORS = ("trained", "gaussian")  # or the name of a packaged prior (stores.packaged), e.g. "first"


@dataclass(frozen=True)
class SurveyConfig:
    """The whole survey: prepare → train → reconstruct → report. ``prior``: "trained" (train it here),
    "gaussian" (the analytic prior fitted to the dataset) or a packaged prior's name (no training)."""

    prepare: PrepareConfig = field(default_factory=lambda: PREPARE_PRESETS["demo"])
    train: TrainConfig = field(default_factory=lambda: TRAIN_PRESETS["demo"])
    reconstruct: ReconstructConfig = field(default_factory=lambda: RECONSTRUCT_PRESETS["demo"])
    prior: str = "trained"
    fits: bool = True

    def __post_init__(self) -> None:
        if self.prior not in PRIORS + PACKAGED_PRIORS:
            raise ValueError(f"unknown prior {self.prior!r}; choose one of {PRIORS + PACKAGED_PRIORS}")
        if self.prior in PRIORS:  # the schedule is known here; a packaged prior's is checked when it is read
            self.train.schedule.timesteps(max(self.reconstruct.K_values))  # ValueError unless K <= T
        fixed = {array_spec(a).mask_N for a in self.reconstruct.arrays} - {None}
        if fixed and fixed != {self.prepare.N}:
            raise ValueError(f"mask-only arrays need N = {sorted(fixed)}, the dataset has N = {self.prepare.N}")


SURVEY_PRESETS: dict[str, SurveyConfig] = {
    "demo": SurveyConfig(),
    # real FIRST test images, the shipped prior (no training step)
    "first": SurveyConfig(prepare=PREPARE_PRESETS["first"], train=TRAIN_PRESETS["first"],
                          reconstruct=RECONSTRUCT_PRESETS["first"], prior="first", fits=False),
    # the full evaluation of the paper's table (200 test images, K up to 1000, S = 128): for GPUs
    "paper": SurveyConfig(prepare=PREPARE_PRESETS["paper"], train=TRAIN_PRESETS["paper"],
                          reconstruct=RECONSTRUCT_PRESETS["paper"], prior="first", fits=False),
}


def survey_preset(preset: str, /, **overrides: Any) -> SurveyConfig:
    """A named preset with overrides; unknown presets or fields raise ValueError."""
    return from_preset(SURVEY_PRESETS, "survey", preset, overrides)


ARRAY_CHOICES = array_names()

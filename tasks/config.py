"""Stage configurations: one frozen dataclass per stage, named presets, a stable content hash."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Optional

from ddrm.galaxies import GalaxyConfig
from ddrm.images import FIT_MODES, NORMALISATIONS
from ddrm.schedule import Schedule
from ddrm.training import OptimConfig
from ddrm.unet import UNET_PRESETS, UNetConfig

SHARED_FIRST = "../shared/data/first-mirabest/mirabest_train_uint8.npz"
SPLITS = ("train", "val", "test")


def stable_hash(payload: Any, length: int = 12) -> str:
    """sha256 of canonical JSON (sorted keys), truncated: equal configs give equal hashes everywhere."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


FIRST_PIXEL_SCALE_ARCSEC = 1.8  # FIRST cutouts (MiraBest); also the synthetic default


def _check_name(name: str) -> None:
    """Names become folder names: non-empty, one path component."""
    if not name or "/" in name:
        raise ValueError(f"name must be a non-empty path component, got {name!r}")


@dataclass(frozen=True)
class PrepareConfig:
    """Dataset preparation: a synthetic population or real images (FITS folder, .npy/.npz) → zarr.

    ``source`` is ``"synthetic"`` or a path. ``n_images`` is the synthetic count or, for real
    images, an optional cap (None: all). ``shard_size`` images per task; a multiple of
    ``chunk_images``, the zarr chunk length, so parallel shards never share a chunk.
    """

    name: str = "synthetic"
    source: str = "synthetic"
    N: int = 64
    n_images: Optional[int] = 2048
    seed: int = 0
    galaxy: GalaxyConfig = field(default_factory=GalaxyConfig)
    fit: str = "crop"
    normalisation: str = "max"
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    pixel_scale_arcsec: Optional[float] = FIRST_PIXEL_SCALE_ARCSEC
    array_key: str = "images"
    shard_size: int = 512
    chunk_images: int = 64
    strict: bool = False

    def __post_init__(self) -> None:
        _check_name(self.name)
        if self.N < 8:
            raise ValueError(f"N must be >= 8, got {self.N}")
        if self.n_images is not None and self.n_images < 1:
            raise ValueError(f"n_images must be >= 1, got {self.n_images}")
        if self.synthetic and self.n_images is None:
            raise ValueError("a synthetic dataset needs n_images")
        if self.fit not in FIT_MODES or self.normalisation not in NORMALISATIONS:
            raise ValueError(f"fit must be one of {FIT_MODES} and normalisation one of {NORMALISATIONS}")
        if len(self.split_fractions) != 3 or min(self.split_fractions) < 0 or \
                abs(sum(self.split_fractions) - 1) > 1e-9:
            raise ValueError(f"split_fractions must be 3 non-negative numbers summing to 1, got {self.split_fractions}")
        if self.chunk_images < 1 or self.shard_size < 1 or self.shard_size % self.chunk_images:
            raise ValueError("shard_size must be a positive multiple of chunk_images")
        if self.pixel_scale_arcsec is not None and self.pixel_scale_arcsec <= 0:
            raise ValueError("pixel_scale_arcsec must be positive")

    @property
    def synthetic(self) -> bool:
        return self.source == "synthetic"

    def to_dict(self) -> dict:
        return asdict(self)

    def content_key(self) -> dict:
        """What determines the data: everything but ``strict`` (which only decides how failures end)."""
        key = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "strict"}
        key["galaxy"] = self.galaxy.to_dict() if self.synthetic else None
        return json.loads(json.dumps(key, default=lambda o: asdict(o)))


PREPARE_PRESETS: dict[str, PrepareConfig] = {
    "demo": PrepareConfig(name="synthetic-demo", N=64, n_images=1024, shard_size=256),
    "paper": PrepareConfig(name="synthetic-paper", N=150, n_images=20000, chunk_images=32, shard_size=1024),
    "first": PrepareConfig(name="first-mirabest", source=SHARED_FIRST, N=150, n_images=None,
                           pixel_scale_arcsec=FIRST_PIXEL_SCALE_ARCSEC),
}


def _from_preset(table: dict, kind: str, preset: str, overrides: dict[str, Any]):
    if preset not in table:
        raise ValueError(f"unknown {kind} preset {preset!r}; choose one of {sorted(table)}")
    try:
        return replace(table[preset], **overrides)
    except TypeError as err:
        raise ValueError(str(err)) from None


def prepare_preset(preset: str, /, **overrides: Any) -> PrepareConfig:
    """A named preset with overrides; unknown presets or fields raise ValueError."""
    return _from_preset(PREPARE_PRESETS, "prepare", preset, overrides)

@dataclass(frozen=True)
class TrainConfig:
    """DDPM prior training with Ray Train. ``batch_size`` is per worker (global = workers × it).

    ``num_workers`` None: one per GPU, else one per ``cpus_per_worker`` free CPUs. ``use_gpu``
    None: GPUs when the cluster has them. Mixed precision (bf16 autocast) applies on GPU only.
    """

    name: str = "prior"
    unet: UNetConfig = field(default_factory=lambda: UNET_PRESETS["tiny"])
    schedule: Schedule = field(default_factory=Schedule)
    optim: OptimConfig = field(default_factory=OptimConfig)
    batch_size: int = 16
    max_shift: int = 2
    seed: int = 0
    num_workers: Optional[int] = None
    cpus_per_worker: int = 1
    use_gpu: Optional[bool] = None
    mixed_precision: bool = True
    checkpoint_every: int = 100
    report_every: int = 10
    keep_checkpoints: int = 2
    max_failures: int = 2

    def __post_init__(self) -> None:
        _check_name(self.name)
        if self.batch_size < 1 or self.max_shift < 0 or self.cpus_per_worker < 1:
            raise ValueError("need batch_size >= 1, max_shift >= 0 and cpus_per_worker >= 1")
        if self.num_workers is not None and self.num_workers < 1:
            raise ValueError(f"num_workers must be >= 1, got {self.num_workers}")
        if self.checkpoint_every < 1 or self.report_every < 1 or self.keep_checkpoints < 1:
            raise ValueError("checkpoint_every, report_every and keep_checkpoints must be >= 1")
        if self.checkpoint_every % self.report_every:
            raise ValueError("checkpoint_every must be a multiple of report_every")

    def to_dict(self) -> dict:
        return {**asdict(self), "unet": self.unet.to_dict(), "schedule": self.schedule.to_dict(),
                "optim": self.optim.to_dict()}

    def content_key(self) -> dict:
        """What determines the trained weights (not how many workers or how often to report)."""
        d = self.to_dict()
        return {k: d[k] for k in ("name", "unet", "schedule", "optim", "batch_size", "max_shift", "seed")}


TRAIN_PRESETS: dict[str, TrainConfig] = {
    # tiny U-Net at N=64: a few minutes on 2 CPU cores
    "demo": TrainConfig(name="prior-demo", unet=UNET_PRESETS["tiny"],
                        optim=OptimConfig(steps=600, lr=1e-3, warmup_steps=50, ema_decay=0.995),
                        batch_size=16, checkpoint_every=150),
    # the reference's recipe: T=1000 cosine, AdamW 1e-4, EMA 0.999; for GPUs
    "paper": TrainConfig(name="prior-paper", unet=UNET_PRESETS["paper"],
                         optim=OptimConfig(steps=200_000, lr=1e-4, warmup_steps=1000, ema_decay=0.999),
                         batch_size=32, checkpoint_every=2000, report_every=50),
}


def train_preset(preset: str, /, **overrides: Any) -> TrainConfig:
    """A named preset with overrides; unknown presets or fields raise ValueError."""
    return _from_preset(TRAIN_PRESETS, "train", preset, overrides)


ARRAY_SPECS = ("vla", "eht", "alma", "paper-vla", "paper-eht", "paper-alma")
GPU_BATCH = 16  # observations per GPU batch: B·S = 16·8 images of 150² fit an 80 GB GPU with the paper U-Net


@dataclass(frozen=True)
class ReconstructConfig:
    """A survey of simulated observations: the first ``n_images`` test-split images × ``arrays`` ×
    ``K_values``, each with noise σ_y (model space, per measured coordinate) and S posterior samples.

    Arrays are Earth-rotation presets (``vla``, ``eht``, ``alma``) or the reference paper's masks
    (``paper-vla``, ...; N = 150 only). Observations are processed in batches of ``batch_size`` with
    the same array and K by a pool of actors (``num_actors`` None: fill the cluster). ``batch_size``
    None: 1 on CPU actors (batching is slower per image there) and ``GPU_BATCH`` on GPU actors.
    """

    name: str = "survey"
    arrays: tuple[str, ...] = ("vla", "eht", "alma")
    K_values: tuple[int, ...] = (20, 100)
    samples: int = 8
    sigma_y: float = 0.02
    eta: float = 0.85
    eta_b: float = 1.0
    n_images: int = 16
    seed: int = 0
    batch_size: Optional[int] = None
    clean_threshold_sigmas: float = 3.0
    clean_max_iter: int = 2000
    num_actors: Optional[int] = None
    cpus_per_actor: int = 1
    use_gpu: Optional[bool] = None
    save_samples: bool = False
    fits: bool = False

    def __post_init__(self) -> None:
        _check_name(self.name)
        unknown = [a for a in self.arrays if a not in ARRAY_SPECS]
        if unknown or not self.arrays or len(set(self.arrays)) != len(self.arrays):
            raise ValueError(f"unknown or repeated arrays {list(self.arrays)}; choose from {ARRAY_SPECS}")
        if not self.K_values or any(k < 1 for k in self.K_values) or len(set(self.K_values)) != len(self.K_values):
            raise ValueError(f"K values must be distinct and >= 1, got {list(self.K_values)}")
        if self.samples < 1 or self.n_images < 1 or (self.batch_size or 1) < 1 or self.cpus_per_actor < 1:
            raise ValueError("samples, n_images, batch_size and cpus_per_actor must be >= 1")
        if not self.sigma_y >= 0 or not 0 <= self.eta <= 1 or not 0 <= self.eta_b <= 1:
            raise ValueError("need sigma_y >= 0 and eta, eta_b in [0, 1]")
        if self.num_actors is not None and self.num_actors < 1:
            raise ValueError(f"num_actors must be >= 1, got {self.num_actors}")

    def to_dict(self) -> dict:
        return asdict(self)

    def content_key(self) -> dict:
        """What determines the results (not the pool's size or batching of the work)."""
        d = self.to_dict()
        for k in ("num_actors", "cpus_per_actor", "use_gpu", "fits"):
            d.pop(k)
        return d


RECONSTRUCT_PRESETS: dict[str, ReconstructConfig] = {
    "demo": ReconstructConfig(name="survey-demo", K_values=(20, 50), samples=8, n_images=8),
    # the paper's table: its masks, noiseless, 200 test images, S = 128 (design.md §7)
    "paper": ReconstructConfig(name="survey-paper", arrays=("paper-vla", "paper-eht", "paper-alma"),
                               K_values=(10, 50, 100, 500, 1000), samples=128, sigma_y=0.0,
                               n_images=200, batch_size=1),  # B·S = 128 images per denoiser call already
}


def reconstruct_preset(preset: str, /, **overrides: Any) -> ReconstructConfig:
    """A named preset with overrides; unknown presets or fields raise ValueError."""
    return _from_preset(RECONSTRUCT_PRESETS, "reconstruct", preset, overrides)


PRIORS = ("trained", "gaussian")


@dataclass(frozen=True)
class SurveyConfig:
    """The whole survey: prepare → train (unless ``prior`` is "gaussian") → reconstruct → report."""

    prepare: PrepareConfig = field(default_factory=lambda: PREPARE_PRESETS["demo"])
    train: TrainConfig = field(default_factory=lambda: TRAIN_PRESETS["demo"])
    reconstruct: ReconstructConfig = field(default_factory=lambda: RECONSTRUCT_PRESETS["demo"])
    prior: str = "trained"
    fits: bool = True

    def __post_init__(self) -> None:
        if self.prior not in PRIORS:
            raise ValueError(f"unknown prior {self.prior!r}; choose one of {PRIORS}")
        if max(self.reconstruct.K_values) > self.train.schedule.T:
            raise ValueError(f"K must satisfy 1 <= K <= T = {self.train.schedule.T}, got {max(self.reconstruct.K_values)}")
        if any(a.startswith("paper-") for a in self.reconstruct.arrays) and self.prepare.N != 150:
            raise ValueError(f"the paper's masks need N = 150, the dataset has N = {self.prepare.N}")


SURVEY_PRESETS: dict[str, SurveyConfig] = {
    "demo": SurveyConfig(),
    "paper": SurveyConfig(prepare=PREPARE_PRESETS["paper"], train=TRAIN_PRESETS["paper"],
                          reconstruct=RECONSTRUCT_PRESETS["paper"]),
}


def survey_preset(preset: str, /, **overrides: Any) -> SurveyConfig:
    """A named preset with overrides; unknown presets or fields raise ValueError."""
    return _from_preset(SURVEY_PRESETS, "survey", preset, overrides)


def resolve(config: Any, presets: dict, kind: str):
    """A config, or the name of one of ``presets`` (deployments pass preset names)."""
    return _from_preset(presets, kind, config, {}) if isinstance(config, str) else config

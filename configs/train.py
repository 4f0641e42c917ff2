"""DDPM prior training with Ray Train."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from ddrm.config import Config
from ddrm.diffusion.schedule import Schedule
from ddrm.diffusion.training import OptimConfig
from ddrm.diffusion.unet import UNET_PRESETS, UNetConfig

from .common import check_name, from_preset


@dataclass(frozen=True)
class TrainConfig(Config):
    """DDPM prior training with Ray Train. ``batch_size`` is per worker (global = workers × it).

    ``crop_sizes``: train on random windows (``ddrm.diffusion.training.random_crops``), step s at size
    ``crop_sizes[s % len]`` with ``batch_size`` scaled by area from ``crop_sizes[0]``; empty: whole images.
    ``shrink_prob``: the share of windows whose source is shrunk into empty sky by a log-uniform factor in
    [``shrink_min``, 1] (``ddrm.diffusion.training.shrink``: compact sources for VLBI); 0: none.
    ``num_workers`` None: one per GPU, else one per ``cpus_per_worker`` free CPUs. ``use_gpu``
    None: GPUs when the cluster has them. Mixed precision (bf16 autocast) applies on GPU only.
    """

    name: str = "prior"
    unet: UNetConfig = field(default_factory=lambda: UNET_PRESETS["tiny"])
    schedule: Schedule = field(default_factory=Schedule)
    optim: OptimConfig = field(default_factory=OptimConfig)
    batch_size: int = 16
    max_shift: int = 2
    crop_sizes: tuple[int, ...] = ()
    shrink_prob: float = 0.0
    shrink_min: float = 0.08
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
        check_name(self.name)
        if self.batch_size < 1 or self.max_shift < 0 or self.cpus_per_worker < 1:
            raise ValueError("need batch_size >= 1, max_shift >= 0 and cpus_per_worker >= 1")
        if self.num_workers is not None and self.num_workers < 1:
            raise ValueError(f"num_workers must be >= 1, got {self.num_workers}")
        if self.checkpoint_every < 1 or self.report_every < 1 or self.keep_checkpoints < 1:
            raise ValueError("checkpoint_every, report_every and keep_checkpoints must be >= 1")
        if self.checkpoint_every % self.report_every:
            raise ValueError("checkpoint_every must be a multiple of report_every")
        if not 0 <= self.shrink_prob <= 1 or not 0 < self.shrink_min <= 1:
            raise ValueError(f"need 0 <= shrink_prob <= 1 and 0 < shrink_min <= 1, got {self.shrink_prob}, "
                             f"{self.shrink_min}")
        if any(c < self.unet.multiple for c in self.crop_sizes):
            raise ValueError(f"crop sizes must be >= {self.unet.multiple}, got {self.crop_sizes}")

    def content_key(self) -> dict:
        """What determines the trained weights (not how many workers or how often to report)."""
        d = self.to_dict()
        keys = ("name", "unet", "schedule", "optim", "batch_size", "max_shift", "seed") + \
            (("crop_sizes",) if self.crop_sizes else ()) + \
            (("shrink_prob", "shrink_min") if self.shrink_prob else ())  # keeps older runs' keys
        return {k: d[k] for k in keys}


TRAIN_PRESETS: dict[str, TrainConfig] = {
    # tiny U-Net at N=64: a few minutes on 2 CPU cores
    "demo": TrainConfig(name="prior-demo", unet=UNET_PRESETS["tiny"],
                        optim=OptimConfig(steps=600, lr=1e-3, warmup_steps=50, ema_decay=0.995),
                        batch_size=16, checkpoint_every=150),
    # the reference's recipe: T=1000 cosine, AdamW 1e-4, EMA 0.999; for GPUs
    "paper": TrainConfig(name="prior-paper", unet=UNET_PRESETS["paper"],
                         optim=OptimConfig(steps=200_000, lr=1e-4, warmup_steps=1000, ema_decay=0.999),
                         batch_size=32, checkpoint_every=2000, report_every=50),
    # the shipped FIRST prior: a size-independent U-Net (pixel norm, no attention) on random windows
    # of 64..128 px of the train split's 150x150 images, for about 2 h on a 2-core CPU
    "first": TrainConfig(name="prior-first", unet=UNET_PRESETS["first"],
                         optim=OptimConfig(steps=8000, lr=1e-3, warmup_steps=200, ema_decay=0.999),
                         batch_size=16, crop_sizes=(64, 96, 128), checkpoint_every=500, report_every=50),
}


def train_preset(preset: str, /, **overrides: Any) -> TrainConfig:
    """A named preset with overrides; unknown presets or fields raise ValueError."""
    return from_preset(TRAIN_PRESETS, "train", preset, overrides)

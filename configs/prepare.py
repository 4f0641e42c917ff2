"""Dataset preparation: synthetic or real images → a zarr dataset store."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Optional

from ddrm.config import Config
from ddrm.diffusion.galaxies import GalaxyConfig
from ddrm.diffusion.images import FIT_MODES, NORMALISATIONS

from .common import FIRST_PIXEL_SCALE_ARCSEC, check_name, from_preset

SHARED_FIRST = "../shared/data/first-mirabest/mirabest_train_uint8.npz"


@dataclass(frozen=True)
class PrepareConfig(Config):
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
        check_name(self.name)
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

    def content_key(self) -> dict:
        """What determines the data: everything but ``strict`` (which only decides how failures end)."""
        key = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "strict"}
        key["galaxy"] = self.galaxy.to_dict() if self.synthetic else None
        return json.loads(json.dumps(key, default=lambda o: asdict(o)))


PREPARE_PRESETS: dict[str, PrepareConfig] = {
    "demo": PrepareConfig(name="synthetic-demo", N=64, n_images=1024, shard_size=256),
    "synthetic-paper": PrepareConfig(name="synthetic-paper", N=150, n_images=20000, chunk_images=32,
                                     shard_size=1024),
    # the reference paper's data: firstgalaxydata's 2,158 FIRST galaxies, centre 150x150, x/255, its split
    "first": PrepareConfig(name="first", source="firstgalaxydata", N=150, n_images=None, normalisation="global",
                           pixel_scale_arcsec=FIRST_PIXEL_SCALE_ARCSEC, shard_size=256, chunk_images=32),
    # MiraBest's FIRST cutouts from ../shared (tests and a second source)
    "mirabest": PrepareConfig(name="first-mirabest", source=SHARED_FIRST, N=150, n_images=None,
                              pixel_scale_arcsec=FIRST_PIXEL_SCALE_ARCSEC),
}
PREPARE_PRESETS["paper"] = PREPARE_PRESETS["first"]  # the paper's data are FIRST's


def prepare_preset(preset: str, /, **overrides: Any) -> PrepareConfig:
    """A named preset with overrides; unknown presets or fields raise ValueError."""
    return from_preset(PREPARE_PRESETS, "prepare", preset, overrides)

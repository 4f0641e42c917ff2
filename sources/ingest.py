"""Reading real images: a FITS file or folder of FITS cutouts, or .npy/.npz stacks (e.g. FIRST/MiraBest).

Each image is an *item* (a FITS file, or one slice of a stack). Problems are reported per
item by name: unreadable or corrupt files, NaN/inf pixels, wrong dimensionality, all zero.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Optional

import numpy as np
import torch

from configs import SPLITS, PrepareConfig, stable_hash
from ddrm.diffusion.images import as_image, fit_to_size, normalise
from sources import first_package
from stores.fits_io import read_fits

FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz")
ARRAY_SUFFIXES = (".npy", ".npz")


@dataclass(frozen=True)
class Item:
    """One image: a FITS file (index None), slice ``index`` of a .npy/.npz stack, or a whole 2-D array (-1)."""

    path: str
    index: Optional[int] = None

    @property
    def name(self) -> str:
        base = os.path.basename(self.path)
        return base if self.index is None or self.index < 0 else f"{base}[{self.index}]"


class Loaded(NamedTuple):
    image: torch.Tensor  # (N, N) before normalisation, negatives kept
    pixel_scale_arcsec: Optional[float]
    label: int


def _kind(path: Path) -> Optional[str]:
    name = path.name.lower()
    if name.endswith(FITS_SUFFIXES):
        return "fits"
    return "array" if name.endswith(ARRAY_SUFFIXES) else None


@functools.lru_cache(maxsize=4)
def _stack(path: str, key: str) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """(images, labels or None) of a .npy (memory-mapped) or .npz file, or of the firstgalaxydata
    package's zipped HDF5; cached per thread pool."""
    if first_package.is_first_source(path):
        galaxies = first_package.read(path)
        return galaxies.images, galaxies.labels
    if path.lower().endswith(".npy"):
        return np.load(path, mmap_mode="r", allow_pickle=False), None
    with np.load(path, allow_pickle=False) as z:
        names = list(z.keys())
        chosen = key if key in names else (names[0] if len(names) == 1 else None)
        if chosen is None:
            raise ValueError(f"no array {key!r} (has {names})")
        return z[chosen], (z["labels"] if "labels" in names else None)


def list_items(source: str, array_key: str = "images") -> tuple[list[Item], list[tuple[str, str]]]:
    """(items, bad files as (name, reason)) of a FITS/.npy/.npz file or a folder of them, sorted by name,
    or of the firstgalaxydata package (``source="firstgalaxydata"``), in the package's order."""
    if first_package.is_first_source(source):
        path = first_package.data_file() if source == first_package.SOURCE else source
        return [Item(path, i) for i in range(len(first_package.read(path).images))], []
    root = Path(source)
    if not root.exists():
        raise FileNotFoundError(f"image source {source!r} does not exist")
    files = [root] if root.is_file() else sorted(p for p in root.iterdir() if p.is_file() and _kind(p))
    if not files:
        raise ValueError(f"{source}: no FITS (.fits/.fit/.fts) or .npy/.npz files found")
    items: list[Item] = []
    bad: list[tuple[str, str]] = []
    for f in files:
        if _kind(f) == "fits":
            items.append(Item(str(f)))
            continue
        try:
            images, _ = _stack(str(f), array_key)
        except Exception as err:  # numpy raises ValueError, OSError, zipfile.BadZipFile...
            bad.append((f.name, f"not a readable array file ({type(err).__name__}: {err})"))
            continue
        if images.ndim == 2:
            items.append(Item(str(f), -1))
        elif images.ndim == 3:
            items.extend(Item(str(f), i) for i in range(images.shape[0]))
        else:
            bad.append((f.name, f"expected (n, H, W) or (H, W) images, got shape {images.shape}"))
    return items, bad


def files_hash(items: list[Item]) -> str:
    """Provenance of a file list: names, sizes and modification times (not contents)."""
    paths = sorted({i.path for i in items})
    return stable_hash([(os.path.basename(p), os.path.getsize(p), os.stat(p).st_mtime_ns) for p in paths])


def load_item(item: Item, config: PrepareConfig) -> Loaded:
    """Read, check and fit one image to (N, N); ValueError with the reason if it is unusable."""
    scale: Optional[float] = None
    label = -1
    if item.index is None:
        data, header = read_fits(item.path)
        raw = torch.from_numpy(data)
        if "CDELT2" in header:
            scale = abs(float(header["CDELT2"])) * 3600.0
    else:
        images, labels = _stack(item.path, config.array_key)
        raw = torch.from_numpy(np.asarray(images if item.index < 0 else images[item.index], dtype=np.float64))
        if labels is not None and item.index >= 0:
            label = int(labels[item.index])
    image = fit_to_size(as_image(raw), config.N, config.fit)
    if not (image > 0).any():
        raise ValueError(f"no positive pixels left after '{config.fit}' to {config.N}x{config.N}")
    if scale is not None and config.fit == "resample":
        scale *= min(raw.shape[-2:]) / config.N
    return Loaded(image, scale, label)


def load_normalised(item: Item, config: PrepareConfig, global_scale: Optional[float]) -> tuple[torch.Tensor, int]:
    """(image (N, N) in [0, 1], label): per-image peak, or the dataset's global scale."""
    loaded = load_item(item, config)
    return normalise(loaded.image, global_scale if config.normalisation == "global" else None), loaded.label


def describe_error(item: Item, err: Exception) -> tuple[str, str]:
    """(item name, reason) without repeating the path that read_fits puts in its messages."""
    reason = str(err).removeprefix(f"{item.path}: ")
    return item.name, reason or type(err).__name__


def source_splits(items: list[Item]) -> Optional[dict[str, list[int]]]:
    """The source's own train/val/test split as positions in ``items`` (firstgalaxydata's literature
    split), or None when the source has none and the store draws a seeded split."""
    paths = {i.path for i in items}
    if len(paths) != 1 or not first_package.is_first_source(next(iter(paths))):
        return None
    split = first_package.read(next(iter(paths))).split
    return {name: [pos for pos, item in enumerate(items) if split[item.index] == name] for name in SPLITS}


def source_provenance(source: str) -> dict:
    """Where the images came from, for the store's attributes."""
    if first_package.is_first_source(source):
        from importlib.metadata import version
        return {"source": first_package.SOURCE, "package_version": version(first_package.SOURCE),
                "data_file": first_package.DATA_FILE, "split": "Split_literature (the package's)",
                "classes": list(first_package.CLASSES), "crop": "centre 150x150 of 300x300 ([75:225])",
                "licence": "FIRST images: free for scholarly and non-commercial use"}
    return {"source": os.path.abspath(source)}

"""The FIRST radio galaxies of the PyPI package ``firstgalaxydata`` (Griese et al. 2023), read offline.

The package ships ``galaxy_data_h5.zip``: one HDF5 file with 2,158 groups ``data_<i>``, each holding

    Img               (300, 300) uint8, attributes RA, DEC (deg), Source (catalogue)
    Label_literature  0 FRI, 1 FRII, 2 Compact, 3 Bent
    Split_literature  b"train" | b"valid" | b"test"   (1,758 / 200 / 200)

Only that data file is read (with h5py, straight out of the zip): the package's Python code
imports torchvision, which this project does not install. The images are free for scholarly
and non-commercial use (FIRST survey, Becker, White & Helfand 1995).
"""

from __future__ import annotations

import functools
import importlib.util
import io
import os
import zipfile
from typing import NamedTuple

import numpy as np

SOURCE = "firstgalaxydata"
DATA_FILE = "galaxy_data_h5.zip"
CLASSES = ("FRI", "FRII", "Compact", "Bent")
PACKAGE_SPLITS = {"train": "train", "valid": "val", "test": "test"}  # package name -> store name
INSTALL_HINT = "pip install --no-deps firstgalaxydata==0.2.1 h5py  (or: pip install -e '.[first]')"


class FirstGalaxies(NamedTuple):
    """images (n, 300, 300) uint8; labels (n,) int16; split (n,) store split names; ra, dec (n,) deg."""

    images: np.ndarray
    labels: np.ndarray
    split: np.ndarray
    ra: np.ndarray
    dec: np.ndarray


def data_file() -> str:
    """Path of the package's ``galaxy_data_h5.zip``; ImportError with the install command if absent."""
    spec = importlib.util.find_spec(SOURCE)
    path = os.path.join(os.path.dirname(spec.origin), DATA_FILE) if spec and spec.origin else None
    if path is None or not os.path.isfile(path):
        raise ImportError(f"the 'first' dataset needs the firstgalaxydata package's data file; {INSTALL_HINT}")
    return path


def is_first_source(path: str) -> bool:
    return path == SOURCE or os.path.basename(path) == DATA_FILE


@functools.lru_cache(maxsize=2)
def read(path: str) -> FirstGalaxies:
    """All galaxies of the zipped HDF5 at ``path``, in the package's order (data_0, data_1, ...)."""
    import h5py

    with zipfile.ZipFile(path) as z:
        member = next((n for n in z.namelist() if n.endswith(".h5")), None)
        if member is None:
            raise ValueError(f"{path}: no .h5 file inside")
        raw = z.read(member)
    with h5py.File(io.BytesIO(raw), "r") as f:
        keys = sorted(f.keys(), key=lambda k: int(k.rsplit("_", 1)[1]))
        images = np.stack([f[k]["Img"][()] for k in keys])
        labels = np.array([int(f[k]["Label_literature"][()]) for k in keys], dtype=np.int16)
        split = np.array([PACKAGE_SPLITS[f[k]["Split_literature"].asstr()[()]] for k in keys])
        ra = np.array([float(f[k]["Img"].attrs.get("RA", np.nan)) for k in keys])
        dec = np.array([float(f[k]["Img"].attrs.get("DEC", np.nan)) for k in keys])
    return FirstGalaxies(images, labels, split, ra, dec)


def split_crops(galaxies: FirstGalaxies, split: str, N: int = 150) -> tuple[np.ndarray, np.ndarray]:
    """(indices (n,), centre N×N crops (n, N, N) uint8) of one store split ("train", "val" or "test"),
    in package order, with empty crops skipped (ingest refuses an image with no positive pixel)."""
    import torch

    from ddrm.diffusion.images import centre_crop_or_pad

    idx = np.flatnonzero(galaxies.split == split)
    crops = [centre_crop_or_pad(torch.from_numpy(galaxies.images[i]), N).numpy() for i in idx]
    keep = [k for k, c in enumerate(crops) if c.max() > 0]
    return idx[keep], np.stack([crops[k] for k in keep]) if keep else np.zeros((0, N, N), np.uint8)

"""Antenna / station layouts shipped as package data (ddrm/data/arrays, provenance in its README).

Names: ``vla_a``..``vla_d`` (and hybrids ``vla_bna``, ``vla_cnb``, ``vla_dnc``),
``alma_c1``..``alma_c10`` (ALMA Cycle 12 12-m configurations), ``eht2017``, ``eht2022``.
A user's own array is read from CSV text in the same format with :func:`parse_layout_csv`.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

# every packaged layout CSV, named by its file (ALMA's cycle tag dropped: alma_cycle12_c5.csv -> alma_c5)
_FILES = {p.name.removesuffix(".csv").replace("alma_cycle12_", "alma_"): p.name
          for p in resources.files("ddrm.data.arrays").iterdir() if p.name.endswith(".csv")}
REQUIRED_COLUMNS = ("name", "x_m", "y_m", "z_m", "diam_m")


@dataclass(frozen=True, eq=False)
class Layout:
    """An array configuration: station names, ITRF XYZ (n, 3) metres, diameters (n,) metres,
    SEFD (n,) Jy (NaN where unknown)."""

    name: str
    stations: tuple[str, ...]
    xyz: np.ndarray
    diameters: np.ndarray
    sefd: np.ndarray

    @property
    def n_stations(self) -> int:
        return len(self.stations)

    @property
    def n_baselines(self) -> int:
        return self.n_stations * (self.n_stations - 1) // 2

    def longest_baseline_m(self) -> float:
        d = self.xyz[:, None, :] - self.xyz[None, :, :]
        return float(np.sqrt((d**2).sum(-1)).max())


def known_layouts() -> list[str]:
    return sorted(_FILES)


def _float(text: str) -> float:
    return float(text) if text.strip() else math.nan


def parse_layout_csv(text: str, name: str) -> Layout:
    """A layout from CSV text with at least the columns name, x_m, y_m, z_m, diam_m (sefd_jy optional)."""
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows:
        raise ValueError(f"layout {name!r}: no stations in the CSV")
    missing = [c for c in REQUIRED_COLUMNS if c not in rows[0]]
    if missing:
        raise ValueError(f"layout {name!r}: CSV lacks columns {missing}")
    try:
        xyz = np.array([[float(r["x_m"]), float(r["y_m"]), float(r["z_m"])] for r in rows])
        diam = np.array([_float(r["diam_m"]) for r in rows])
        sefd = np.array([_float(r.get("sefd_jy") or "") for r in rows])
    except ValueError as err:
        raise ValueError(f"layout {name!r}: bad number in CSV ({err})") from None
    if not np.isfinite(xyz).all():
        raise ValueError(f"layout {name!r}: station coordinates must be finite")
    if len(rows) < 2:
        raise ValueError(f"layout {name!r}: need at least 2 stations")
    return Layout(name, tuple(r["name"] for r in rows), xyz, diam, sefd)


@lru_cache(maxsize=None)
def load_layout(name: str) -> Layout:
    """A packaged layout by name; unknown names get an error listing the known ones."""
    if name not in _FILES:
        raise ValueError(f"unknown array layout {name!r}; known: {', '.join(known_layouts())}")
    text = resources.files("ddrm.data.arrays").joinpath(_FILES[name]).read_text()
    return parse_layout_csv(text, name)

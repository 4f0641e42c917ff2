"""Visibilities: one type from the file reader to the likelihoods.

Sample j of baseline (p, q) at time t_j and frequency ν_j, with antenna gains g (``radio.gains``):

    V_j = g_p(t_j) g_q(t_j)* Σ_{l,m} I(l, m) exp(-2πi (u_j l + v_j m)) + n_j,   n_j ~ CN(0, 2/w_j)

with (u_j, v_j) in wavelengths and w_j = 1/σ_j² per real coordinate. ``interval`` (n,) numbers the gains'
solution intervals (``gains.solution_intervals``; all 0 until one is chosen), so that the samples held out
of a fit share the intervals of those kept. ``antennas`` is the antenna table: (number, name) pairs, the
numbers being those of ``antenna1`` and ``antenna2``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional

import numpy as np

PER_SAMPLE = ("uv", "vis", "weight", "antenna1", "antenna2", "time_jd", "freq_hz", "interval")


@dataclass(frozen=True, eq=False, kw_only=True)
class Visibilities:
    """uv (n, 2) wavelengths, vis (n,) complex Jy, weight (n,) 1/σ² per real coordinate, antenna1 and antenna2
    (n,) int, time_jd (n,) days, freq_hz (n,), interval (n,) int (module docstring), antennas ((number,
    name), ...). Subclasses add what a reader knows of the file (``sources.uvfits``); every operation here
    keeps it."""

    uv: np.ndarray
    vis: np.ndarray
    weight: np.ndarray
    antenna1: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    antenna2: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    time_jd: np.ndarray = field(default_factory=lambda: np.zeros(0))
    freq_hz: np.ndarray = field(default_factory=lambda: np.zeros(0))
    interval: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    antennas: tuple[tuple[int, str], ...] = ()

    def __post_init__(self) -> None:
        n = len(self.vis)
        uv = np.asarray(self.uv, np.float64).reshape(-1, 2)
        object.__setattr__(self, "uv", uv)
        for name, dtype in (("antenna1", np.int64), ("antenna2", np.int64), ("time_jd", np.float64),
                            ("freq_hz", np.float64), ("interval", np.int64)):
            value = np.asarray(getattr(self, name), dtype)
            object.__setattr__(self, name, np.zeros(n, dtype) if value.size == 0 and n else value)
        if any(len(getattr(self, k)) != n for k in PER_SAMPLE):
            raise ValueError(f"every per-sample array needs {n} entries, got "
                             f"{ {k: len(getattr(self, k)) for k in PER_SAMPLE} }")

    @property
    def n(self) -> int:
        return len(self.vis)

    @property
    def u(self) -> np.ndarray:
        return self.uv[:, 0]

    @property
    def v(self) -> np.ndarray:
        return self.uv[:, 1]

    @property
    def ref_freq_hz(self) -> float:
        """The weighted mean frequency (Hz)."""
        return float(np.average(self.freq_hz, weights=self.weight))

    def subset(self, keep: np.ndarray) -> "Visibilities":
        """The samples where ``keep`` (n,) bool (or an index array) selects them; the rest unchanged."""
        return replace(self, **{k: getattr(self, k)[keep] for k in PER_SAMPLE})

    def with_values(self, vis: np.ndarray, weight: Optional[np.ndarray] = None) -> "Visibilities":
        """The same samples with other values (and weights)."""
        return replace(self, vis=np.asarray(vis), weight=self.weight if weight is None else np.asarray(weight))

    def with_intervals(self, interval: np.ndarray) -> "Visibilities":
        return replace(self, interval=np.asarray(interval, np.int64))

    def corrected(self, sol) -> "Visibilities":
        """V / (g_p g_q*), w |g_p g_q*|² for a ``gains.GainSolution`` (the data as the sky would give them);
        itself for None."""
        if sol is None:
            return self
        gg = sol.per_visibility(self.antenna1, self.antenna2, self.interval)
        return self.with_values(self.vis / gg, self.weight * np.abs(gg) ** 2)

"""Self-calibration: antenna gains solved with the image, V_pq = g_p g_q* V_pq(sky) + n.

    start             phase-only gains against a point source at the phase centre (the classic start
                      when no model exists: from uniformly random phases, CLEAN of the raw data is noise)
    CLEAN rounds      CLEAN the corrected data, solve the raw data's gains against the CLEAN components'
                      visibilities (``interferometry.gains``), correct: V' = V / (g_p g_q*), w' = w |g_p g_q*|².
                      Phase-only first; "amp-phase" adds the amplitudes from the second round.
    posterior         the posterior of the corrected data (``image_observation``)
    gain block        the exact chain's sweeps with the gains as a block: before each sweep the raw data's
                      gains are solved against the denoised samples' mean and the likelihood rebuilt
                      (``selfcal_chain``), so the last sweep's image and the gains agree

Gains are always solved from the raw data, so the last solution maps the file to the sky. Convergence (the
rule): a stage stops when, between two rounds, the raw χ² of the image against the corrected data changes
by less than ``tol`` of itself *and* the gains move by less than ``gain_tol`` (rms of |ĝ_new/ĝ_old - 1| over
the solved gains), or after ``clean_rounds`` CLEAN rounds and ``rounds`` gain blocks in the chain (where it
freezes the gains). The χ² alone is not enough: at the noise floor it stops changing while the gains and the
image still improve together. Closure quantities judge the result without trusting any of it
(``interferometry.closure``). Pure: arrays and tensors in.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Optional, Union

import numpy as np
import torch

from .interferometry.gains import GainConfig, GainSolution, MODES, interval_bounds, solve_gains
from .interferometry.nufft import SPEED_OF_LIGHT, chi2_per_coordinate, degrid

SELFCAL_MODES = ("none",) + MODES
VLBI_BASELINE_M = 200e3  # a longest baseline beyond 200 km: independent clocks per station (VLBI)


@dataclass(frozen=True)
class SelfCalConfig:
    """``mode`` none / phase / amp-phase; ``solint`` "scan" or seconds; σ of the log amplitudes; ``start``
    "point" or "clean" (the raw data's CLEAN); at most ``clean_rounds`` CLEAN rounds and ``rounds`` gain
    blocks in the exact chain (one before every ``every``-th sweep and the last: ``selfcal_chain``; ``draw``:
    each sample's gains drawn from their Laplace posterior rather than one mode for all), each stage stopping
    at a relative χ² change below ``tol`` with the gains moving less than ``gain_tol`` (module docstring)."""

    mode: str = "phase"
    solint: Union[str, float] = "scan"
    amp_sigma: float = 0.1
    start: str = "point"
    clean_rounds: int = 10
    rounds: int = 10
    every: int = 5
    draw: bool = False
    tol: float = 0.02
    gain_tol: float = 0.005

    def __post_init__(self) -> None:
        if self.mode not in SELFCAL_MODES:
            raise ValueError(f"selfcal mode must be one of {SELFCAL_MODES}, got {self.mode!r}")
        GainConfig(solint=self.solint, amp_sigma=self.amp_sigma)  # validates both
        if self.rounds < 1 or self.clean_rounds < 1 or self.every < 1 or not self.tol > 0 or not self.gain_tol > 0:
            raise ValueError(f"need rounds, clean_rounds, every >= 1 and tol, gain_tol > 0, got {self}")
        if self.start not in ("point", "clean"):
            raise ValueError(f"start must be 'point' or 'clean', got {self.start!r}")

    def gains(self, round_: int) -> GainConfig:
        """Round 0 is phase-only whatever the mode; amplitudes join from round 1 in "amp-phase"."""
        return GainConfig(mode="phase" if round_ == 0 else self.mode, solint=self.solint, amp_sigma=self.amp_sigma)

    def to_dict(self) -> dict:
        return {"mode": self.mode, "solint": self.solint, "amp_sigma": self.amp_sigma, "start": self.start,
                "clean_rounds": self.clean_rounds, "rounds": self.rounds, "every": self.every, "draw": self.draw,
                "tol": self.tol, "gain_tol": self.gain_tol}


def is_vlbi(uv: np.ndarray, freq_hz: np.ndarray) -> bool:
    """Whether the longest baseline (wavelengths × λ) exceeds ``VLBI_BASELINE_M``."""
    if len(uv) == 0:
        return False
    return float((np.hypot(uv[:, 0], uv[:, 1]) * SPEED_OF_LIGHT / np.asarray(freq_hz)).max()) > VLBI_BASELINE_M


@dataclass(frozen=True)
class CalData:
    """Visibilities to calibrate: uv (n, 2) wavelengths, vis (n,) Jy, weight (n,) 1/σ² per real coordinate,
    antennas (n,), solution interval (n,) and time (n,) JD."""

    uv: np.ndarray
    vis: np.ndarray
    weight: np.ndarray
    antenna1: np.ndarray
    antenna2: np.ndarray
    interval: np.ndarray
    time_jd: np.ndarray

    def corrected(self, sol: Optional[GainSolution]) -> "CalData":
        """V / (g_p g_q*), w |g_p g_q*|² (the data as the sky would give them); itself if no solution."""
        if sol is None:
            return self
        gg = sol.per_visibility(self.antenna1, self.antenna2, self.interval)
        return replace(self, vis=self.vis / gg, weight=self.weight * np.abs(gg) ** 2)

    def subset(self, keep: np.ndarray) -> "CalData":
        return CalData(*(getattr(self, f)[keep] for f in ("uv", "vis", "weight", "antenna1", "antenna2", "interval",
                                                            "time_jd")))

    def as_tuple(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.uv, self.vis, self.weight


@dataclass
class SelfCalRecord:
    """What a self-calibration did: one row per round (stage, χ² after), the final solution."""

    config: SelfCalConfig
    rounds: list = field(default_factory=list)
    solution: Optional[GainSolution] = None
    converged: bool = False

    def advance(self, stage: str, round_: int, data: CalData, model: np.ndarray, sol: GainSolution,
                previous: Optional[float], **extra) -> tuple[float, bool, CalData]:
        """Take ``sol``, solved in round ``round_`` of ``stage`` against model visibilities (n,), as the solution
        and record its row (``extra`` joins it): the model's χ² against the data corrected by it, and how far the
        gains moved. Returns (that χ², whether the convergence rule holds against the round before, whose χ²
        was ``previous``, and the corrected data)."""
        fixed = data.corrected(sol)
        value, moved = chi2_per_coordinate(model, fixed.vis, fixed.weight), gain_change(sol, self.solution)
        mode, cfg = self.config.gains(round_).mode, self.config
        self.solution = sol
        self.rounds.append({"stage": stage, "mode": mode, **extra, "chi2": value,
                            "gain_change": moved if np.isfinite(moved) else None})
        settled = previous is not None and cfg.gains(round_ - 1).mode == mode \
            and abs(previous - value) < cfg.tol * value and moved < cfg.gain_tol
        return value, settled, fixed

    def summary(self) -> dict:
        sol = self.solution
        return {**self.config.to_dict(), "rounds_run": self.rounds, "converged": self.converged,
                "n_intervals": 0 if sol is None else int(len(sol.gains)),
                "n_unsolved": 0 if sol is None else int((~sol.solved).sum())}


def gain_change(new: GainSolution, old: Optional[GainSolution]) -> float:
    """rms of |ĝ_new/ĝ_old - 1| over the gains solved in both (inf without an old solution of that shape)."""
    if old is None or old.gains.shape != new.gains.shape:
        return float("inf")
    both = new.solved & old.solved
    if not both.any():
        return 0.0
    return float(np.sqrt(np.mean(np.abs(new.gains[both] / old.gains[both] - 1) ** 2)))


def solve(data: CalData, image: torch.Tensor, pixel_scale_arcsec: float, config: GainConfig) -> GainSolution:
    """The raw data's gains against an image's (N, N, Jy/pixel) visibilities."""
    model = np.asarray(degrid(image.double(), data.uv, pixel_scale_arcsec))
    return solve_gains(data.vis, model, data.weight, data.antenna1, data.antenna2, data.interval, config,
                       *interval_bounds(data.time_jd, data.interval))


def chi2(data: CalData, image: torch.Tensor, pixel_scale_arcsec: float) -> float:
    """χ² per real coordinate of an image against the data."""
    return chi2_per_coordinate(np.asarray(degrid(image.double(), data.uv, pixel_scale_arcsec)), data.vis, data.weight)


def point_start(data: CalData, N: int, pixel_scale_arcsec: float, record: SelfCalRecord) -> None:
    """Phase-only gains against a point source at the phase centre (its flux does not matter to phases)."""
    point = torch.zeros(N, N, dtype=torch.float64)
    point[N // 2, N // 2] = float(np.median(np.abs(data.vis[data.weight > 0]))) if (data.weight > 0).any() else 1.0
    record.solution = solve(data, point, pixel_scale_arcsec, record.config.gains(0))
    record.rounds.append({"stage": "point", "mode": "phase", "chi2": chi2(data.corrected(record.solution), point,
                                                                          pixel_scale_arcsec)})


def iterate(data: CalData, image_of: Callable[[CalData], torch.Tensor], pixel_scale_arcsec: float,
            record: SelfCalRecord, stage: str, first_round: int = 0, rounds: Optional[int] = None) -> CalData:
    """Rounds of: image the corrected data, solve the raw data against it, correct; until the χ² rule
    (at most ``rounds``, default ``config.rounds``). Returns the data corrected by the last solution
    (``record.solution``)."""
    previous = None
    for k in range(rounds or record.config.rounds):
        image = image_of(data.corrected(record.solution))
        model = np.asarray(degrid(image.double(), data.uv, pixel_scale_arcsec))  # once: the solve and the χ²
        sol = solve_gains(data.vis, model, data.weight, data.antenna1, data.antenna2, data.interval,
                          record.config.gains(first_round + k), *interval_bounds(data.time_jd, data.interval))
        value, settled, _ = record.advance(stage, first_round + k, data, model, sol, previous)
        if settled:
            record.converged = True
            break
        previous = value
    return data.corrected(record.solution)

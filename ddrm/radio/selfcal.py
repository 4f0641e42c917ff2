"""Self-calibration: antenna gains solved with the image, V_pq = g_p g_q* V_pq(sky) + n.

    start             phase-only gains against a point source at the phase centre (the classic start
                      when no model exists: from uniformly random phases, CLEAN of the raw data is noise)
    CLEAN rounds      CLEAN the corrected data (positive components), solve the raw data's gains against their
                      visibilities (``radio.gains``), correct: V' = V / (g_p g_q*), w' = w |g_p g_q*|².
                      Phase-only first; "amp-phase" adds the amplitudes from the second round.
    posterior         the posterior of the corrected data (``imaging.posterior``)
    gain block        the exact chain's sweeps with the gains as a block: before each sweep the raw data's
                      gains are solved against the denoised samples' mean and the likelihood rebuilt
                      (``selfcal_chain``), so the last sweep's image and the gains agree

Gains are always solved from the raw data, so the last solution maps the file to the sky. Convergence (the
rule): a stage stops when, between two rounds, the raw χ² of the image against the corrected data changes
by less than ``tol`` of itself *and* the gains move by less than ``gain_tol`` (rms of |ĝ_new/ĝ_old - 1| over
the solved gains), or after ``clean_rounds`` CLEAN rounds and ``rounds`` gain blocks in the chain (where it
freezes the gains). The χ² alone is not enough: at the noise floor it stops changing while the gains and the
image still improve together. A CLEAN stage also stops after ``patience`` rounds of one mode without a lower
χ² than its best, and keeps the best round's gains: on sparse VLBI coverage CLEAN's model changes from round
to round by more than the gains' noise, and the loop wanders instead of settling. Extended sources on dense
coverage need many rounds (docs/measurements.md), hence ``clean_rounds`` = 50. Each round's row
records both measures of the gains' move: ``gain_change`` and ``gain_change_sigma`` (rms in units of each
gain's σ). Closure quantities judge the result without trusting any of it (``radio.closure``).
Pure: arrays and tensors in.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Callable, Optional, Union

import numpy as np
import torch

from ddrm.config import Config, option
from ddrm.radio.gains import MIN_SOLINT_S, MODES, GainConfig, GainSolution, interval_bounds, solve_gains
from ddrm.radio.gridding import ARCSEC
from ddrm.radio.nufft import SPEED_OF_LIGHT, chi2_per_coordinate, degrid
from ddrm.radio.visibilities import Visibilities

SELFCAL_MODES = ("none",) + MODES
SELFCAL_CHOICES = ("auto",) + SELFCAL_MODES  # "auto": the caller decides from the data (imager.terms)
SELFCAL_GAINS = ("mode", "draw")
VLBI_BASELINE_M = 200e3  # a longest baseline beyond 200 km: independent clocks per station (VLBI)


@dataclass(frozen=True)
class SelfCalConfig(Config):
    """``mode`` none / phase / amp-phase (or "auto", for the caller to decide: the recipe refuses it);
    ``solint`` "scan" or seconds; σ of the log amplitudes; ``start`` "point" or "clean" (the raw data's
    CLEAN); at most ``clean_rounds`` CLEAN rounds and ``rounds`` gain blocks in the exact chain (one before
    every ``every``-th sweep and the last: ``selfcal_chain``; ``gains`` "mode": one solution for all samples,
    "draw": each sample's gains drawn from their Laplace posterior), each stage stopping
    at a relative χ² change below ``tol`` with the gains moving less than ``gain_tol``, a CLEAN stage also
    after ``patience`` rounds without a lower χ² (module docstring)."""

    mode: str = option("phase", name="selfcal", choices=SELFCAL_CHOICES,
                       help="antenna gains solved with the image (auto: only where the data ask for them, judged "
                            "by a quick posterior's fit); the gains go to gains.csv, closure chi2 to the summary")
    solint: Union[str, float] = option("scan", parse="solint",
                                       help=f"gain solution interval: scan, inf, or seconds (>= {MIN_SOLINT_S:g})")
    amp_sigma: float = 0.1
    start: str = "point"
    clean_rounds: int = 50
    rounds: int = 10
    every: int = 5
    gains: str = option("mode", name="selfcal_gains", choices=SELFCAL_GAINS,
                        help="mode: one gain solution for all samples; draw: each sample's gains drawn from "
                             "their posterior, so the std includes the gains' uncertainty")
    tol: float = 0.02
    gain_tol: float = 0.005
    patience: int = 10

    def __post_init__(self) -> None:
        if self.mode not in SELFCAL_CHOICES:
            raise ValueError(f"selfcal mode must be one of {SELFCAL_CHOICES}, got {self.mode!r}")
        if self.gains not in SELFCAL_GAINS:
            raise ValueError(f"selfcal gains must be one of {SELFCAL_GAINS}, got {self.gains!r}")
        GainConfig(solint=self.solint, amp_sigma=self.amp_sigma)  # validates both
        if min(self.rounds, self.clean_rounds, self.every, self.patience) < 1 \
                or not min(self.tol, self.gain_tol) > 0:
            raise ValueError(f"need rounds, clean_rounds, every, patience >= 1 and tol, gain_tol > 0, got {self}")
        if self.start not in ("point", "clean"):
            raise ValueError(f"start must be 'point' or 'clean', got {self.start!r}")

    @property
    def draw(self) -> bool:
        return self.gains == "draw"

    def gain_config(self, round_: int) -> GainConfig:
        """Round 0 is phase-only whatever the mode; amplitudes join from round 1 in "amp-phase"."""
        return GainConfig(mode="phase" if round_ == 0 else self.mode, solint=self.solint, amp_sigma=self.amp_sigma)


def is_vlbi(uv: np.ndarray, freq_hz: np.ndarray) -> bool:
    """Whether the longest baseline (wavelengths × λ) exceeds ``VLBI_BASELINE_M``."""
    if len(uv) == 0:
        return False
    return float((np.hypot(uv[:, 0], uv[:, 1]) * SPEED_OF_LIGHT / np.asarray(freq_hz)).max()) > VLBI_BASELINE_M


@dataclass(frozen=True)
class SelfCalTrace:
    """What a self-calibration did, returned by each step and never changed in place: one row per round
    (stage, mode, χ² after, the gains' move), the solution kept, whether the convergence rule stopped it."""

    config: SelfCalConfig
    rounds: tuple[dict, ...] = ()
    solution: Optional[GainSolution] = None
    converged: bool = False

    def advanced(self, stage: str, round_: int, data: Visibilities, model: np.ndarray, sol: GainSolution,
                 previous: Optional[float], **extra) -> tuple["SelfCalTrace", float, bool, Visibilities]:
        """``sol``, solved in round ``round_`` of ``stage`` against model visibilities (n,), taken as the
        solution with its row (``extra`` joins it): the model's χ² against the data corrected by it, and how far
        the gains moved. Returns (the new trace, that χ², whether the convergence rule holds against the round
        before, whose χ² was ``previous``, and the corrected data)."""
        fixed = data.corrected(sol)
        value = chi2_per_coordinate(model, fixed.vis, fixed.weight)
        moved, moved_sigma = gain_change(sol, self.solution)
        mode, cfg = self.config.gain_config(round_).mode, self.config
        row = {"stage": stage, "mode": mode, **extra, "chi2": value,
               "gain_change": moved if np.isfinite(moved) else None,
               "gain_change_sigma": moved_sigma if np.isfinite(moved_sigma) else None}
        settled = previous is not None and cfg.gain_config(round_ - 1).mode == mode \
            and abs(previous - value) < cfg.tol * value and moved < cfg.gain_tol
        return replace(self, solution=sol, rounds=self.rounds + (row,)), value, settled, fixed

    def with_row(self, row: dict) -> "SelfCalTrace":
        return replace(self, rounds=self.rounds + (row,))

    def summary(self) -> dict:
        sol = self.solution
        return {**asdict(self.config), "rounds_run": list(self.rounds), "converged": self.converged,
                "n_intervals": 0 if sol is None else int(len(sol.gains)),
                "n_unsolved": 0 if sol is None else int((~sol.solved).sum())}


def gain_change(new: GainSolution, old: Optional[GainSolution]) -> tuple[float, float]:
    """How far the gains moved, over the gains solved in both: (rms of |ĝ_new/ĝ_old - 1|, rms of the moves of
    ln|ĝ| and φ in units of their σ (``GainSolution.sigma``, over the free ones: σ > 0)); (inf, inf) without an
    old solution of that shape, (0, 0) with none solved in both."""
    if old is None or old.gains.shape != new.gains.shape:
        return float("inf"), float("inf")
    both = new.solved & old.solved
    if not both.any():
        return 0.0, 0.0
    ratio = new.gains[both] / old.gains[both]
    absolute = float(np.sqrt(np.mean(np.abs(ratio - 1) ** 2)))
    if new.sigma is None:
        return absolute, float("inf")
    moves, sigma = np.stack([np.log(np.abs(ratio)), np.angle(ratio)], -1), new.sigma[both]
    free = sigma > 0
    return absolute, float(np.sqrt(np.mean((moves[free] / sigma[free]) ** 2))) if free.any() else 0.0


def solve_model(data: Visibilities, model: np.ndarray, config: GainConfig,
                bounds: Optional[tuple[np.ndarray, np.ndarray]] = None) -> GainSolution:
    """The raw data's gains against model visibilities (n,); ``bounds`` the intervals' (start, stop) JD
    (``interval_bounds``, computed here if None: a loop that calls this often passes them once)."""
    bounds = interval_bounds(data.time_jd, data.interval) if bounds is None else bounds
    return solve_gains(data.vis, model, data.weight, data.antenna1, data.antenna2, data.interval, config, *bounds)


def solve(data: Visibilities, image: torch.Tensor, pixel_scale_arcsec: float, config: GainConfig) -> GainSolution:
    """The raw data's gains against an image's (N, N, Jy/pixel) visibilities."""
    return solve_model(data, np.asarray(degrid(uv=data.uv, image=image.double(), pixel_size=pixel_scale_arcsec * ARCSEC)), config)


def chi2(data: Visibilities, image: torch.Tensor, pixel_scale_arcsec: float) -> float:
    """χ² per real coordinate of an image against the data."""
    return chi2_per_coordinate(np.asarray(degrid(uv=data.uv, image=image.double(), pixel_size=pixel_scale_arcsec * ARCSEC)), data.vis, data.weight)


def point_start(data: Visibilities, N: int, pixel_scale_arcsec: float, trace: SelfCalTrace) -> SelfCalTrace:
    """Phase-only gains against a point source at the phase centre (its flux does not matter to phases)."""
    point = torch.zeros(N, N, dtype=torch.float64)
    point[N // 2, N // 2] = float(np.median(np.abs(data.vis[data.weight > 0]))) if (data.weight > 0).any() else 1.0
    solution = solve(data, point, pixel_scale_arcsec, trace.config.gain_config(0))
    row = {"stage": "point", "mode": "phase", "chi2": chi2(data.corrected(solution), point, pixel_scale_arcsec)}
    return replace(trace, solution=solution).with_row(row)


def iterate(data: Visibilities, image_of: Callable[[Visibilities], torch.Tensor], pixel_scale_arcsec: float,
            trace: SelfCalTrace, stage: str, first_round: int = 0,
            rounds: Optional[int] = None) -> tuple[SelfCalTrace, Visibilities]:
    """Rounds of: image the corrected data, solve the raw data against it, correct; until the χ² rule
    (at most ``rounds``, default ``config.rounds``), or until ``config.patience`` rounds in a row (of one mode)
    found no lower χ² than the best, whose solution is then kept (the loop wanders, as CLEAN on sparse VLBI
    coverage does). Returns (the trace, the data corrected by the solution kept)."""
    previous, best = None, None  # best: (χ², solution, round k, mode) of the current mode
    bounds = interval_bounds(data.time_jd, data.interval)
    for k in range(rounds or trace.config.rounds):
        image = image_of(data.corrected(trace.solution))
        model = np.asarray(degrid(uv=data.uv, image=image.double(), pixel_size=pixel_scale_arcsec * ARCSEC))
        config = trace.config.gain_config(first_round + k)
        sol = solve_model(data, model, config, bounds)
        trace, value, settled, _ = trace.advanced(stage, first_round + k, data, model, sol, previous)
        if settled:
            trace = replace(trace, converged=True)
            break
        if best is None or config.mode != best[3] or value < best[0]:
            best = (value, sol, k, config.mode)
        elif k - best[2] >= trace.config.patience:
            last = {**trace.rounds[-1], "kept": first_round + best[2]}
            trace = replace(trace, solution=best[1], rounds=trace.rounds[:-1] + (last,))
            break
        previous = value
    return trace, data.corrected(trace.solution)

"""Antenna gains: V_pq = g_p g_q* M_pq + n, one complex gain per antenna per solution interval.

Per interval, with g_p = exp(a_p + i φ_p), the gains minimise the weighted least squares with a prior on
the log amplitudes,

    L(a, φ) = Σ_j w_j |V_j - g_p(j) g_q(j)* M_j|² + Σ_p a_p² / σ_a²,

w_j = 1/σ_j² per real coordinate, M the model's visibilities. "phase" fixes a = 0; "amp-phase" solves both.
The reference antenna's phase is 0 (the data fix only phase differences). Started from StEFCal's
unconstrained complex gains (Salvini & Wijnholds 2014: g_p <- Σ_j w_j V_j z_j* / Σ_j w_j |z_j|², z_j the
model times the other antenna's gain, averaged every second sweep), which converges from unit gains where
a phase wrap would trap a local method, then polished by Levenberg-damped Gauss-Newton on (a, φ): the residual's Jacobian is -m_j (∂a_p, ∂a_q), -i m_j (∂φ_p), +i m_j (∂φ_q), with
m_j = g_p g_q* M_j. An antenna with no unflagged sample in an interval, or every antenna of an interval
with fewer than ``min_antennas`` (3: two antennas fit any source's phase exactly), keeps unit gain and is
recorded as unsolved; no gain is ever NaN. The amplitudes are normalised to a mean of 1 over all intervals
(``solnorm``, CASA's ``normtype='mean'``): the data cannot tell a brighter sky from larger gains, so the
a-priori amplitude calibration keeps the flux scale, while each interval's scale relative to the others
follows the model. An a-priori calibration unbiased in amplitude has E|g| = 1, and then its geometric mean is
below 1 (Jensen: for |g| uniform in 0.7-1.3, 0.985), so a geometric-mean normalisation would put the flux
3 % (0.985²) low on average (corrected data V/(ĝ_p ĝ_q*) carry the true gains' scale squared).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

import numpy as np

from ddrm.radio.crossval import scan_index

MODES = ("phase", "amp-phase")
MIN_SOLINT_S = 0.01  # seconds; float("inf") is one interval per scan run (CASA's solint='inf')


@dataclass(frozen=True)
class GainConfig:
    """``mode``; ``solint`` "scan" or seconds; ``amp_sigma`` σ_a of the log amplitudes (0.1: 10 %);
    ``ref_antenna`` (None: the heaviest antenna of each interval); at most ``max_iter`` Gauss-Newton steps;
    ``solnorm`` "all" (one mean amplitude of 1 over every interval: the model fixes each interval's
    amplitude scale, so scans stay consistent with each other), "interval" (each interval's own, CASA's
    per-solution ``solnorm``: a scan whose true gains are low in the mean is scaled up) or "none" (the model
    fixes the flux scale too: a model whose total flux is known, as the closure posterior's, from the zero
    spacing or the user; only the log-amplitude prior pulls the gains towards 1)."""

    mode: str = "phase"
    solint: Union[str, float] = "scan"
    amp_sigma: float = 0.1
    ref_antenna: Optional[int] = None
    min_antennas: int = 3
    max_iter: int = 30
    solnorm: str = "all"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.solint != "scan" and not (isinstance(self.solint, (int, float)) and not isinstance(self.solint, bool)
                                          and self.solint >= MIN_SOLINT_S):
            raise ValueError(f"solint must be 'scan', 'inf' or at least {MIN_SOLINT_S:g} s, got {self.solint!r}")
        if self.solnorm not in ("all", "interval", "none"):
            raise ValueError(f"solnorm must be 'all', 'interval' or 'none', got {self.solnorm!r}")
        if not self.amp_sigma > 0 or self.min_antennas < 2 or self.max_iter < 1:
            raise ValueError(f"need amp_sigma > 0, min_antennas >= 2 and max_iter >= 1, got {self}")


@dataclass(frozen=True)
class GainSolution:
    """antennas (A,) numbers; gains (I, A) complex; solved (I, A) bool; reference (I,) antenna (-1: none);
    interval (n,) each visibility's interval; start/stop (I,) JD of each interval; sigma (I, A, 2) the σ of
    ln|g| and of φ (rad) from the data's weights (the Laplace approximation; 0 where fixed or unsolved)."""

    antennas: np.ndarray
    gains: np.ndarray
    solved: np.ndarray
    reference: np.ndarray
    interval: np.ndarray
    start: np.ndarray
    stop: np.ndarray
    sigma: Optional[np.ndarray] = None

    def per_visibility(self, antenna1: np.ndarray, antenna2: np.ndarray,
                       interval: Optional[np.ndarray] = None) -> np.ndarray:
        """g_p g_q* (n,) at each visibility (of the solved data, or of others by their ``interval``); an
        antenna or interval the solution never saw has unit gain."""
        interval = self.interval if interval is None else np.asarray(interval, np.int64)
        padded = np.concatenate([self.gains, np.ones((1, self.gains.shape[1]))])
        padded = np.concatenate([padded, np.ones((len(padded), 1))], axis=1)  # last row/column: unit
        col = {int(a): k for k, a in enumerate(self.antennas)}
        p = np.array([col.get(int(a), -1) for a in antenna1], dtype=np.int64)
        q = np.array([col.get(int(a), -1) for a in antenna2], dtype=np.int64)
        i = np.where((interval >= 0) & (interval < len(self.gains)), interval, -1)
        return padded[i, p] * np.conj(padded[i, q])

    def table(self) -> list[dict]:
        """One row per antenna and interval: antenna, interval, start/stop JD, amplitude, phase (deg), solved,
        and the σ of ln amplitude and of the phase (deg) where known."""
        return [{"antenna": int(a), "interval": i, "start_jd": float(self.start[i]), "stop_jd": float(self.stop[i]),
                 "amplitude": float(abs(self.gains[i, k])), "phase_deg": float(np.degrees(np.angle(self.gains[i, k]))),
                 "solved": bool(self.solved[i, k]),
                 **({} if self.sigma is None else {"ln_amplitude_sigma": float(self.sigma[i, k, 0]),
                                                   "phase_sigma_deg": float(np.degrees(self.sigma[i, k, 1]))})}
                for i in range(len(self.gains)) for k, a in enumerate(self.antennas)]


def solution_intervals(time_jd: np.ndarray, solint: Union[str, float]) -> np.ndarray:
    """(n,) interval of each sample: its scan (time gaps, ``crossval.scan_index``), cut further into
    ``solint``-second pieces from each scan's start if solint is a number."""
    scans = scan_index(time_jd)
    if solint == "scan" or len(time_jd) == 0:
        return scans
    start = np.array([time_jd[scans == s].min() for s in range(int(scans.max()) + 1)])
    piece = np.floor((time_jd - start[scans]) * 86400.0 / float(solint)).astype(np.int64)
    _, inverse = np.unique(np.stack([scans, piece], 1), axis=0, return_inverse=True)
    return inverse.ravel()


def _stefcal(V, M, w, p, q, n_ant: int, segment: Optional[np.ndarray] = None, sweeps: int = 100) -> np.ndarray:
    """Unconstrained complex gains (n_ant,) of V ≈ g_p g_q* M by StEFCal from g = 1. ``segment`` (n_ant,)
    non-decreasing: which independent system (solution interval) each gain belongs to, all solved in one
    vectorised sweep, each stopping at its own convergence (default: one system)."""
    seg = np.zeros(n_ant, np.int64) if segment is None else segment
    starts = np.flatnonzero(np.r_[True, seg[1:] != seg[:-1]]) if n_ant else np.zeros(0, np.int64)
    done = np.zeros(len(starts), bool)
    g = np.ones(n_ant, np.complex128)
    for k in range(sweeps):
        z1, z2 = np.conj(g[q]) * M, np.conj(g[p] * M)  # V_j = g_p z1_j ; conj V_j = g_q z2_j
        a, c = w * V * np.conj(z1), w * np.conj(V) * np.conj(z2)
        num = np.bincount(p, a.real, n_ant) + np.bincount(q, c.real, n_ant) + \
            1j * (np.bincount(p, a.imag, n_ant) + np.bincount(q, c.imag, n_ant))
        den = np.bincount(p, w * np.abs(z1) ** 2, n_ant) + np.bincount(q, w * np.abs(z2) ** 2, n_ant)
        new = np.where(den > 0, num / np.maximum(den, 1e-300), g)
        new = (new + g) / 2 if k % 2 else new
        new = np.where(done[seg], g, new)
        scale = np.maximum(np.maximum.reduceat(np.abs(g), starts), 1e-300)
        done |= np.maximum.reduceat(np.abs(new - g), starts) < 1e-12 * scale
        g = new
        if done.all():
            break
    return g


def _normal_equations(V, m, sw, p, q, n_ant: int, free: np.ndarray, theta: np.ndarray,
                      amp_sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """(A, g): the Gauss-Newton normal matrix JᵀJ + prior and gradient at θ over the free parameters."""
    J = np.zeros((len(V), 2, n_ant), np.complex128)
    rows = np.arange(len(V))
    np.add.at(J, (rows, 0, p), -m)
    np.add.at(J, (rows, 0, q), -m)
    np.add.at(J, (rows, 1, p), -1j * m)
    np.add.at(J, (rows, 1, q), 1j * m)
    Jf = J.reshape(len(V), -1)[:, free.ravel()] * sw[:, None]
    Jr = np.concatenate([Jf.real, Jf.imag])
    r = (V - m) * sw
    rr = np.concatenate([r.real, r.imag])
    prior = np.where(np.arange(2 * n_ant) < n_ant, 1 / amp_sigma ** 2, 0.0)[free.ravel()]
    return Jr.T @ Jr + np.diag(prior), Jr.T @ rr + prior * theta.ravel()[free.ravel()]


def _solve_interval(V, M, w, p, q, n_ant: int, ref: int, config: GainConfig,
                    g0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Newton from StEFCal's gains g0 (n_ant,) for one interval: (a, φ) (2, n_ant) from samples with
    antenna columns p, q, and their σ (2, n_ant): the Laplace approximation, sqrt diag A⁻¹ of the normal
    matrix at the solution (-ln p = L/2; 0 for a fixed parameter)."""
    amp = config.mode == "amp-phase"
    g0 = np.where(np.abs(g0) > 0, g0, 1)
    theta = np.stack([np.log(np.abs(g0)) if amp else np.zeros(n_ant), np.angle(g0 * np.conj(g0[ref]))])
    free = np.ones((2, n_ant), bool)
    free[0] = amp
    free[1, ref] = False
    sw = np.sqrt(w)

    def cost(th):
        m = np.exp(th[0, p] + th[0, q] + 1j * (th[1, p] - th[1, q])) * M
        return float((w * np.abs(V - m) ** 2).sum() + (th[0] ** 2).sum() / config.amp_sigma ** 2), m

    c, m = cost(theta)
    lam = 1e-3
    for _ in range(config.max_iter):
        A, g = _normal_equations(V, m, sw, p, q, n_ant, free, theta, config.amp_sigma)
        for _ in range(10):
            step = np.linalg.solve(A + lam * np.diag(np.diag(A) + 1e-12), -g)
            trial = theta.copy()
            trial[free] += step
            c_new, m_new = cost(trial)
            if c_new <= c:
                theta, c, m, lam = trial, c_new, m_new, lam / 3
                break
            lam *= 10
        else:
            break
        if np.abs(step).max() < 1e-10:
            break
    A, _ = _normal_equations(V, m, sw, p, q, n_ant, free, theta, config.amp_sigma)
    sigma = np.zeros((2, n_ant))
    sigma[free] = np.sqrt(np.clip(np.diag(np.linalg.pinv(A)), 0, None))
    return theta, sigma


def _stefcal_all(vis, model, weight, plans: list, starts: np.ndarray) -> np.ndarray:
    """StEFCal of every planned interval at once (``_stefcal`` with one segment per interval): the gains
    (starts[-1],), interval k's at starts[k]:starts[k + 1]."""
    if not plans:
        return np.ones(0, np.complex128)
    sel = np.concatenate([plan[1] for plan in plans])
    p = np.concatenate([plan[3] + o for plan, o in zip(plans, starts)])
    q = np.concatenate([plan[4] + o for plan, o in zip(plans, starts)])
    segment = np.repeat(np.arange(len(plans)), np.diff(starts))
    return _stefcal(vis[sel], model[sel], weight[sel], p, q, int(starts[-1]), segment)


def solve_gains(vis: np.ndarray, model: np.ndarray, weight: np.ndarray, antenna1: np.ndarray, antenna2: np.ndarray,
                interval: np.ndarray, config: GainConfig, start_jd: Optional[np.ndarray] = None,
                stop_jd: Optional[np.ndarray] = None) -> GainSolution:
    """Gains per interval (module docstring) of data vis (n,) against model visibilities (n,), weights (n,)."""
    antennas = np.unique(np.concatenate([antenna1, antenna2]))
    col = {int(a): k for k, a in enumerate(antennas)}
    n_int = int(interval.max()) + 1 if len(interval) else 0
    gains = np.ones((n_int, len(antennas)), np.complex128)
    solved = np.zeros(gains.shape, bool)
    reference = np.full(n_int, -1, np.int64)
    sigma = np.zeros((n_int, len(antennas), 2))
    good = (weight > 0) & np.isfinite(vis) & np.isfinite(model) & (antenna1 != antenna2)
    plans = []  # (interval, samples, antennas present, their columns p and q, reference column)
    for i in range(n_int):
        sel = np.flatnonzero(good & (interval == i))
        present = np.unique(np.concatenate([antenna1[sel], antenna2[sel]]))
        if len(present) < config.min_antennas:
            continue
        local = {int(a): k for k, a in enumerate(present)}
        p = np.array([local[int(a)] for a in antenna1[sel]])
        q = np.array([local[int(a)] for a in antenna2[sel]])
        load = np.bincount(p, weight[sel], len(present)) + np.bincount(q, weight[sel], len(present))
        ref = local.get(config.ref_antenna, int(np.argmax(load))) if config.ref_antenna is not None \
            else int(np.argmax(load))
        plans.append((i, sel, present, p, q, ref))
    starts = np.cumsum([0] + [len(plan[2]) for plan in plans])
    g0 = _stefcal_all(vis, model, weight, plans, starts)
    for k, (i, sel, present, p, q, ref) in enumerate(plans):
        theta, sd = _solve_interval(vis[sel], model[sel], weight[sel], p, q, len(present), ref, config,
                                    g0[starts[k]: starts[k + 1]])
        if config.solnorm == "interval":
            theta[0] -= np.log(np.exp(theta[0]).mean())  # this interval's mean amplitude is 1
        cols = [col[int(a)] for a in present]
        gains[i, cols] = np.exp(theta[0] + 1j * theta[1])
        sigma[i, cols] = sd.T
        solved[i, cols] = True
        reference[i] = int(present[ref])
    if config.solnorm == "all" and solved.any():  # one mean amplitude of 1 over every solved gain
        gains[solved] /= np.abs(gains[solved]).mean()
    start = start_jd if start_jd is not None else np.zeros(n_int)
    stop = stop_jd if stop_jd is not None else np.zeros(n_int)
    return GainSolution(antennas, gains, solved, reference, np.asarray(interval, np.int64), start, stop, sigma)


def interval_bounds(time_jd: np.ndarray, interval: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(start, stop) JD (I,) of each interval's samples."""
    n = int(interval.max()) + 1 if len(interval) else 0
    return (np.array([time_jd[interval == i].min() for i in range(n)]),
            np.array([time_jd[interval == i].max() for i in range(n)]))

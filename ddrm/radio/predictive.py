"""The posterior predictive check of held-out data: a truth-free test of the error bars.

For held-out data d_j with thermal σ_j, and the model of each posterior sample x_s at the same points,
m_sj = (A x_s)_j (s = 1..S), the predictive distribution of d_j is approximately N(E[m_j], σ_j² + Var[m_j]):

    z_j = (d_j - m̄_j) / sqrt(σ_j² + c² (1 + 1/S) v_j),   m̄_j = (1/S) Σ_s m_sj,  v_j = Σ_s (m_sj - m̄_j)²/(S - 1)

(the (1 + 1/S) is the sampling error of m̄ from S samples; c = 1 is the posterior as drawn). Visibilities
contribute both real coordinates, σ_j² = 1/w_j; closure phases use the wrapped difference and the circular
spread of the samples' closure phases; log closure amplitudes are real. A calibrated posterior puts a share
0.6827 of |z| under 1 and 0.9545 under 2 (``LEVELS``), and E[z²] = 1.

``conformal_scale`` is the c at which a set of z reaches the 68.27 % level exactly (bisection on log c; the
share is monotone in c); scaling the posterior's spread by c scales every linear predictive variance by c².

Where the check already passes (both shares within three binomial errors of their levels: with thermal noise
far above the samples' spread, the shares hardly move with c, and a fitted c would be noise), c = 1.
``recalibration`` is otherwise split-conformal in two numbers: c, the ``conformal_scale`` that meets the
68.27 % level, scales the image's std map; k = ``tail_bound`` of the z at c, their 0.9545 quantile (the
⌈(n + 1) · 0.9545⌉-th smallest |z|, never below 2, the Gaussian's), bounds the 95 % interval |z| < k, which
held-out residuals with heavier tails than a Gaussian's (a few baselines' model error) need: the 68 %
interval is the std map times c, the 95 % one k times that. ``cross_fitted`` with ``tail`` scores each half
at the (c, k) of the other.
"""

from __future__ import annotations

import math
from typing import Optional, Union

import numpy as np

LEVELS = ((0.6827, 1.0), (0.9545, 2.0))  # (probability, |z| bound) of a standard normal


def visibility_residuals(values: np.ndarray, weight: np.ndarray, models: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(r, σ², v) per real coordinate (2n,): r = d - m̄, σ² = 1/w, v the samples' variance; ``values`` (n,)
    complex, ``weight`` (n,) 1/σ² per real coordinate, ``models`` (S, n) complex with S >= 2."""
    models = np.asarray(models)
    if models.ndim != 2 or models.shape[0] < 2:
        raise ValueError(f"need models (S >= 2, n), got shape {models.shape}")
    mean, var_re, var_im = models.mean(0), models.real.var(0, ddof=1), models.imag.var(0, ddof=1)
    r = np.concatenate([(values - mean).real, (values - mean).imag])
    return r, np.concatenate([1 / weight, 1 / weight]), np.concatenate([var_re, var_im])


def block_means(index: np.ndarray, weight: np.ndarray, values: np.ndarray, models: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted means per block, (d̄ (B,), w̄ (B,), m̄ (S, B)): d̄_b = Σ_b w d / w̄_b, w̄_b = Σ_b w (1/σ² of the
    mean), m̄_sb = Σ_b w m_s / w̄_b; ``index`` (n,) the block of each datum in 0..B-1. Averaging is linear, so a
    block mean is itself a datum with its own model; its thermal variance falls by the block's size while the
    samples' spread of a smooth model does not, so the check of block means weighs the posterior's width."""
    index = np.asarray(index)
    B = int(index.max()) + 1 if len(index) else 0
    wsum = np.bincount(index, weight, minlength=B)
    mean = lambda x: (np.bincount(index, weight * x.real, minlength=B)  # noqa: E731
                      + 1j * np.bincount(index, weight * x.imag, minlength=B)) / np.maximum(wsum, 1e-300)
    return mean(np.asarray(values)), wsum, np.stack([mean(m) for m in np.asarray(models)])


def closure_phase_residuals(data: np.ndarray, sigma: np.ndarray, models: np.ndarray
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(r, σ², v) of closure phases (T,) rad against the samples' (S, T): the wrapped difference from the
    circular mean, and the circular variance -2 ln R (R the mean resultant length)."""
    resultant = np.exp(1j * np.asarray(models)).mean(0)
    mean = np.angle(resultant)
    var = -2 * np.log(np.clip(np.abs(resultant), 1e-12, 1.0))
    return np.angle(np.exp(1j * (data - mean))), np.asarray(sigma) ** 2, var * len(models) / max(len(models) - 1, 1)


def amplitude_residuals(data: np.ndarray, sigma: np.ndarray, models: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(r, σ², v) of real data (T,) (log closure amplitudes) against the samples' (S, T)."""
    models = np.asarray(models)
    return data - models.mean(0), np.asarray(sigma) ** 2, models.var(0, ddof=1)


def closure_phase_blocks(index: np.ndarray, phase: np.ndarray, sigma: np.ndarray, models: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(r, σ², v) of closure phases averaged per block (``index`` (T,) in 0..B-1; data (T,) rad, σ (T,),
    samples' (S, T)): unit phasors weighted by w = 1/σ², P_b = Σ_b w e^{iψ} / w̄_b, ψ̄_b = arg P_b, and to
    first order σ̄_b² = 1/(w̄_b |P_b|²) (1/w̄_b where the block's phases agree); each sample's phasors the
    same way, then ``closure_phase_residuals``. Gain-free like the closures, with the thermal noise
    averaged down as in ``block_means``."""
    w = 1 / np.asarray(sigma) ** 2
    p, wsum, pm = block_means(index, w, np.exp(1j * np.asarray(phase)), np.exp(1j * np.asarray(models)))
    sig = 1 / np.sqrt(wsum * np.maximum(np.abs(p) ** 2, 1e-12))
    return closure_phase_residuals(np.angle(p), sig, np.angle(pm))


def amplitude_blocks(index: np.ndarray, data: np.ndarray, sigma: np.ndarray, models: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(r, σ², v) of real data (log closure amplitudes) averaged per block, weights 1/σ² (exact: averaging
    is linear, σ̄_b² = 1/w̄_b), then ``amplitude_residuals``."""
    d, wsum, m = block_means(index, 1 / np.asarray(sigma) ** 2, np.asarray(data), np.asarray(models))
    return amplitude_residuals(d.real, 1 / np.sqrt(wsum), m.real)


def z_scores(r: np.ndarray, sigma2: np.ndarray, v: np.ndarray, S: int, c: float = 1.0) -> np.ndarray:
    """z = r / sqrt(σ² + c² (1 + 1/S) v) (module docstring), all (m,)."""
    return r / np.sqrt(sigma2 + c * c * (1 + 1 / S) * v)


def check(z: np.ndarray, bound_95: Union[float, np.ndarray] = LEVELS[1][1]) -> dict[str, Optional[float]]:
    """The summary of a set of z: its mean z², the shares inside the 68 % (|z| < 1) and 95 % (|z| <
    ``bound_95``, a number or one per z; 2 for a Gaussian) intervals, its count."""
    z = np.asarray(z, np.float64)
    bound = np.broadcast_to(np.asarray(bound_95, np.float64), z.shape)
    finite = np.isfinite(z)
    z, bound = z[finite], bound[finite]
    if len(z) == 0:
        return {"mean_z2": None, "coverage_68": None, "coverage_95": None, "n": 0}
    return {"mean_z2": float(np.mean(z ** 2)), "coverage_68": float(np.mean(np.abs(z) < LEVELS[0][1])),
            "coverage_95": float(np.mean(np.abs(z) < bound)), "n": int(len(z))}


def tail_bound(z: np.ndarray) -> float:
    """The 95 % interval's bound k on |z| (module docstring): the ⌈(n + 1) · 0.9545⌉-th smallest of the n
    finite |z| (the largest where that rank exceeds n), at least 2; 2 without data."""
    a = np.sort(np.abs(np.asarray(z, np.float64)))
    a = a[np.isfinite(a)]
    if len(a) == 0:
        return LEVELS[1][1]
    rank = min(math.ceil((len(a) + 1) * LEVELS[1][0]), len(a))
    return max(LEVELS[1][1], float(a[rank - 1]))


def conformal_scale(r: np.ndarray, sigma2: np.ndarray, v: np.ndarray, S: int, lo: float = 1e-3,
                    hi: float = 1e3) -> float:
    """The c in [lo, hi] at which the share of |z| < 1 is 0.6827 (module docstring);
    ``lo`` or ``hi`` where the level lies outside (the thermal noise alone over-covers, or the samples do not
    spread)."""
    target = LEVELS[0][0]

    def share(c: float) -> float:
        return float(np.mean(np.abs(z_scores(r, sigma2, v, S, c)) < 1.0))

    if share(lo) >= target:
        return lo
    if share(hi) < target:
        return hi
    a, b = math.log(lo), math.log(hi)
    for _ in range(60):
        m = (a + b) / 2
        a, b = (m, b) if share(math.exp(m)) < target else (a, m)
    return math.exp(b)


def _tolerance(p: float, n: int) -> float:
    """Three binomial errors of a share p measured on n data (held-out data in blocks share their posterior
    error, so their shares scatter more than binomially)."""
    return 3 * math.sqrt(p * (1 - p) / max(n, 1))


def recalibration(r: np.ndarray, sigma2: np.ndarray, v: np.ndarray, S: int) -> tuple[float, float]:
    """(c, k) of the module docstring: (1, the tail bound at 1) where the posterior as drawn meets both levels
    within three binomial errors, else (``conformal_scale``, the ``tail_bound`` of the z at it)."""
    shares = check(z_scores(r, sigma2, v, S))
    passes = shares["n"] and all(abs(shares[key] - p) <= _tolerance(p, shares["n"])
                                 for key, (p, _) in zip(("coverage_68", "coverage_95"), LEVELS))
    c = 1.0 if passes else conformal_scale(r, sigma2, v, S)
    return c, tail_bound(z_scores(r, sigma2, v, S, c))


def cross_fitted_z(r: np.ndarray, sigma2: np.ndarray, v: np.ndarray, S: int, half: np.ndarray
                   ) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """(z (m,), 95 % bound (m,)): each half's z at the (c, k) ``recalibration`` fitted on the other half
    (``half`` (m,) bool); None where a half is empty."""
    z = np.empty_like(np.asarray(r, np.float64))
    bound = np.empty_like(z)
    for part in (half, ~half):
        if not part.any() or part.all():
            return None
        c, k = recalibration(r[~part], sigma2[~part], v[~part], S)
        z[part], bound[part] = z_scores(r[part], sigma2[part], v[part], S, c), k
    return z, bound


def cross_fitted(r: np.ndarray, sigma2: np.ndarray, v: np.ndarray, S: int, half: np.ndarray,
                 tail: bool = False) -> dict[str, Optional[float]]:
    """The ``check`` of ``cross_fitted_z``'s z, at its bounds k with ``tail`` (else 2), pooled: an honest
    estimate of the recalibrated posterior's coverage on unseen data."""
    fitted = cross_fitted_z(r, sigma2, v, S, half)
    if fitted is None:
        return check(np.zeros(0))
    return check(fitted[0], fitted[1] if tail else LEVELS[1][1])

"""Cross-validation on the visibilities: a seeded held-out set of whole blocks (baseline × scan), so that
close neighbours in uv (the same baseline a few seconds apart) never sit on both sides of the split.

The held-out χ² per real coordinate, Σ_j w_j |V_j - (A I)_j|² / (2 n) over the held-out samples (``nufft``
degrids I), judges an image with no truth: for the true sky and weights that are 1/σ², it is 1 on average;
an image that over-fits the noise of the fitted part, or misses structure, scores above it.
"""

from __future__ import annotations

import numpy as np

SCAN_GAP_S = 60.0  # a gap in time longer than this (and than 5 integrations) starts a new scan


def scan_index(time_jd: np.ndarray, gap_s: float = SCAN_GAP_S) -> np.ndarray:
    """(n,) scan number of each sample: consecutive distinct times split where the gap exceeds
    max(gap_s, 5 × the median gap)."""
    if len(time_jd) == 0:
        return np.zeros(0, dtype=np.int64)
    times = np.unique(time_jd)
    gaps = np.diff(times) * 86400.0
    limit = max(gap_s, 5 * float(np.median(gaps))) if len(gaps) else gap_s
    starts = np.concatenate([[0], np.cumsum(gaps > limit)])
    return starts[np.searchsorted(times, time_jd)]


def baseline_scan_blocks(antenna1: np.ndarray, antenna2: np.ndarray, time_jd: np.ndarray,
                         gap_s: float = SCAN_GAP_S) -> np.ndarray:
    """(n,) the (baseline, scan) block of each sample, numbered from 0 in (baseline, scan) order; a baseline
    is its unordered station pair."""
    keys = np.stack([np.minimum(antenna1, antenna2), np.maximum(antenna1, antenna2), scan_index(time_jd, gap_s)],
                    axis=1)
    return np.unique(keys, axis=0, return_inverse=True)[1].ravel()


def holdout_mask(antenna1: np.ndarray, antenna2: np.ndarray, time_jd: np.ndarray, fraction: float, seed: int,
                 gap_s: float = SCAN_GAP_S) -> np.ndarray:
    """(n,) bool, True for held-out samples: whole (baseline, scan) blocks in a seeded order until at least
    ``fraction`` of the samples are held out (0 < fraction < 1)."""
    if not 0 < fraction < 1:
        raise ValueError(f"the held-out fraction must lie in (0, 1), got {fraction}")
    which = baseline_scan_blocks(antenna1, antenna2, time_jd, gap_s)
    sizes = np.bincount(which)
    order = np.random.default_rng(seed).permutation(len(sizes))
    taken = order[:int(np.searchsorted(np.cumsum(sizes[order]), fraction * len(which))) + 1]
    if len(taken) == len(sizes):
        raise ValueError(f"{len(sizes)} (baseline, scan) blocks: too few to hold out {fraction:.0%} and fit the rest")
    return np.isin(which, taken)


def scan_holdout(time_jd: np.ndarray, fraction: float, seed: int, gap_s: float = SCAN_GAP_S) -> np.ndarray:
    """(n,) bool, True for the samples of the held-out scans: whole scans in a seeded order until at least
    ``fraction`` of the scans are held out, and at least one scan is kept and one held; all False with
    fewer than two scans."""
    if not 0 < fraction < 1:
        raise ValueError(f"the held-out fraction must lie in (0, 1), got {fraction}")
    scans = scan_index(time_jd, gap_s)
    n = int(scans.max()) + 1 if len(scans) else 0
    if n < 2:
        return np.zeros(len(scans), dtype=bool)
    k = min(max(1, int(np.ceil(fraction * n))), n - 1)
    return np.isin(scans, np.random.default_rng(seed).permutation(n)[:k])

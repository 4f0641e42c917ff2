"""Are the station phases stable within a solution interval? The data's own answer.

For each baseline, consecutive integrations i, i+1 of one scan (less than ``max_gap_s`` apart), both of S/N ≥
``snr_min``, give a phase step Δφ = arg(V_{i+1} V_i*). A sky changes a baseline's phase slowly (Earth rotation
over seconds), so without station-phase wander Δφ is thermal: Δφ ~ N(0, σ²/|V_i|² + σ²/|V_{i+1}|²) to first
order (σ = 1/√w per real coordinate), and q = Δφ² / that variance is χ²₁, median 0.455. The statistic is

    R = median(q) / 0.455,

about 1 for phases stable between integrations, and large where the atmosphere or unlocked clocks move the
station phases faster than a solution interval could follow (mm-VLBI before self-calibration). The median
keeps a few phase jumps (scan boundaries, a fringe-fit wrap) from deciding.
"""

from __future__ import annotations

import numpy as np

CHI2_1_MEDIAN = 0.454936  # the median of χ² with one degree of freedom
DATA_TERMS = ("visibilities", "closures")
PHASE_WANDER_LIMIT = 4.0  # R above it: phase steps twice their thermal size; the visibilities' phases are not data


def choose_data_term(requested: str, ratio: float) -> tuple[str, str]:
    """(the data term, why) for ``requested`` "visibilities", "closures" or "auto" and the file's R: "auto"
    takes closures where R > ``PHASE_WANDER_LIMIT`` (module docstring), the visibilities otherwise (and where
    no phase step could be measured)."""
    if requested != "auto":
        return requested, "set by the user"
    if ratio == ratio and ratio > PHASE_WANDER_LIMIT:
        return "closures", (f"auto: station phases wander between integrations (phase steps {ratio:.3g}x their "
                            f"thermal variance > {PHASE_WANDER_LIMIT:g})")
    return "visibilities", (f"auto: station phases stable between integrations (phase steps {ratio:.3g}x their "
                            f"thermal variance <= {PHASE_WANDER_LIMIT:g})" if ratio == ratio else
                            "auto: no phase step to measure stability on")


def phase_scatter_ratio(vis: np.ndarray, weight: np.ndarray, antenna1: np.ndarray, antenna2: np.ndarray,
                        time_jd: np.ndarray, freq_hz: np.ndarray, *, snr_min: float = 5.0,
                        max_gap_s: float = 120.0) -> tuple[float, int]:
    """(R, the number of phase steps it rests on) of visibilities (n,) (module docstring); (NaN, 0) without a
    step."""
    vis, weight = np.asarray(vis), np.asarray(weight)
    amp = np.abs(vis)
    ok = (weight > 0) & (amp * np.sqrt(np.maximum(weight, 0)) >= snr_min) & (antenna1 != antenna2)
    idx = np.flatnonzero(ok)
    lo, hi = np.minimum(antenna1, antenna2)[idx], np.maximum(antenna1, antenna2)[idx]
    order = np.lexsort((np.asarray(time_jd)[idx], np.asarray(freq_hz)[idx], hi, lo))
    j = idx[order]
    same = (lo[order][1:] == lo[order][:-1]) & (hi[order][1:] == hi[order][:-1]) & \
        (np.asarray(freq_hz)[j][1:] == np.asarray(freq_hz)[j][:-1])
    dt = (np.asarray(time_jd)[j][1:] - np.asarray(time_jd)[j][:-1]) * 86400
    step = same & (dt > 0) & (dt < max_gap_s)
    a, b = j[:-1][step], j[1:][step]
    if len(a) == 0:
        return float("nan"), 0
    conj = np.where(antenna1[a] < antenna2[a], 1, -1) * np.where(antenna1[b] < antenna2[b], 1, -1)
    vb = np.where(conj > 0, vis[b], np.conj(vis[b]))
    dphi = np.angle(vb * np.conj(vis[a]))
    var = 1 / (weight[a] * amp[a] ** 2) + 1 / (weight[b] * amp[b] ** 2)
    return float(np.median(dphi ** 2 / var) / CHI2_1_MEDIAN), int(len(a))

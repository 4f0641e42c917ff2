"""Closure quantities: what the visibilities say whatever the antenna gains.

With V_pq = g_p g_q* V⁰_pq (antenna-based gains), at one time and frequency the closure phase of a triangle
(a, b, c) and the log closure amplitude of a quadrangle (a, b, c, d),

    ψ_abc  = arg(V_ab V_bc V_ca)                      (V_ca = conj V_ac)
    ln A   = ln|V_ab| + ln|V_cd| - ln|V_ac| - ln|V_bd|,

do not depend on the g_p. Thermal noise to first order, with σ_j = 1/√w_j per real coordinate:
σ_ψ² = Σ_j σ_j²/|V_j|² (rad²), σ_lnA² = Σ_j σ_j²/|V_j|²; a closure's S/N is 1/σ. The data's amplitudes
are debiased, |V| -> √(|V|² - σ²) (as ehtim's ``amp_debias``), and a sample with |V| ≤ σ forms none.

The set is non-redundant: per time and frequency, with n stations, (n-1)(n-2)/2 closure phases and
n(n-3)/2 log closure amplitudes whose vectors over the baselines' phases (log amplitudes) are linearly
independent. They are chosen greedily by S/N among those with S/N ≥ ``snr_cut`` (3 by default: the
closure checks' convention; the closure likelihood takes every closure, ``ClosureImagingConfig.snr_cut``),
so a time with weak baselines contributes fewer. χ² as ehtim defines them (per closure):

    χ²_cphase  = (2/n) Σ (1 - cos(ψ_data - ψ_model)) / σ_ψ²
    χ²_logcamp = (1/n) Σ (ln A_data - ln A_model)² / σ_lnA².
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations
from typing import Optional

import numpy as np

TIME_TOL_S = 0.5  # samples this close in time form closures together (one integration)
FITTED_CHI2 = 2.0  # χ² per datum up to this: an image fits its data (closures pooled, or raw visibilities)
TRIANGLE_SIGNS = np.array([1, 1, -1], np.int64)  # V_ab V_bc conj(V_ac), each stored with p < q
ALL_CANDIDATES_UP_TO = 12  # stations per time; above, quadrangles containing the two first stations only


@dataclass(frozen=True)
class Closures:
    """Triangles (T, 3) and quadrangles (Q, 4) as indices into the visibilities, with signs (T, 3) (+1: V,
    -1: conj V; quadrangle order ab, cd, ac, bd); the data's closure phases (T,) rad and log closure
    amplitudes (Q,), with their σ."""

    triangles: np.ndarray
    signs: np.ndarray
    phase: np.ndarray
    sigma_phase: np.ndarray
    quadrangles: np.ndarray
    logamp: np.ndarray
    sigma_logamp: np.ndarray

    def phase_terms(self, model: np.ndarray) -> np.ndarray:
        """Each closure phase's χ² term (T,): 2(1 - cos(ψ_data - ψ_model))/σ_ψ² for model visibilities (n,)."""
        d = self.phase - closure_phase(model, self.triangles, self.signs)
        return 2 * (1 - np.cos(d)) / self.sigma_phase ** 2

    def logamp_terms(self, model: np.ndarray) -> np.ndarray:
        """Each log closure amplitude's χ² term (Q,): (ln A_data - ln A_model)²/σ_lnA²."""
        d = self.logamp - log_closure_amplitude(model, self.quadrangles)
        return d ** 2 / self.sigma_logamp ** 2

    def terms(self, model: np.ndarray) -> np.ndarray:
        """Every closure's χ² term (T + Q,), the phases' then the log amplitudes'."""
        return np.concatenate([self.phase_terms(model), self.logamp_terms(model)])

    def chi2_phase(self, model: np.ndarray) -> float:
        """χ²_cphase of model visibilities (n,) at the same samples (NaN if no triangle)."""
        return float(np.mean(self.phase_terms(model))) if len(self.phase) else float("nan")

    def chi2_logamp(self, model: np.ndarray) -> float:
        """χ²_logcamp of model visibilities (n,) (NaN if no quadrangle)."""
        return float(np.mean(self.logamp_terms(model))) if len(self.logamp) else float("nan")


def pooled(n_phase: int, chi2_phase: Optional[float], n_logamp: int, chi2_logamp: Optional[float]) -> float:
    """χ² per closure, phases and log amplitudes pooled by their counts (a kind with none, or a None or NaN χ²,
    left out); NaN without any."""
    kinds = [(n, c) for n, c in ((n_phase, chi2_phase), (n_logamp, chi2_logamp)) if n > 0 and c is not None and c == c]
    total = sum(n for n, _ in kinds)
    return sum(n * c for n, c in kinds) / total if total else float("nan")


def closure_phase(vis: np.ndarray, triangles: np.ndarray, signs: np.ndarray) -> np.ndarray:
    """arg Π_k V_k^(±) over each triangle (T,) rad."""
    v = vis[triangles]
    return np.angle(np.prod(np.where(signs > 0, v, np.conj(v)), axis=1))


def log_closure_amplitude(vis: np.ndarray, quadrangles: np.ndarray) -> np.ndarray:
    """ln|V_ab| + ln|V_cd| - ln|V_ac| - ln|V_bd| (Q,)."""
    a = np.log(np.abs(vis[quadrangles]))
    return a[:, 0] + a[:, 1] - a[:, 2] - a[:, 3]


def _greedy(vectors: np.ndarray, order: np.ndarray, rank: int) -> list[int]:
    """Indices (into vectors (c, d)) of up to ``rank`` linearly independent rows, taken in ``order``
    (Gram-Schmidt against the rows chosen so far)."""
    basis = np.zeros((max(rank, 1), vectors.shape[1]))
    chosen: list[int] = []
    for i in order:
        k = len(chosen)
        r = vectors[i] - basis[:k].T @ (basis[:k] @ vectors[i])
        norm = np.linalg.norm(r)
        if norm > 1e-8:
            basis[k] = r / norm
            chosen.append(int(i))
            if len(chosen) == rank:
                break
    return chosen


@lru_cache(maxsize=64)
def _candidates(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For n stations: every triangle's station positions (C(n,3), 3) in ``combinations`` order, and every
    candidate quadrangle's four pairs (ab, cd, ac, bd) as (first, second) positions ((3G, 4) each): the three
    of each group of four stations in turn (groups through the first two stations only above
    ``ALL_CANDIDATES_UP_TO``)."""
    tri = np.array(list(combinations(range(n), 3)), np.int64).reshape(-1, 3)
    groups = combinations(range(n), 4) if n <= ALL_CANDIDATES_UP_TO else \
        ((0, 1, c, d) for c, d in combinations(range(2, n), 2))
    a, b, c, d = np.array(list(groups), np.int64).reshape(-1, 4).T
    acab = np.stack([a, c, a, b], 1)
    first = np.stack([acab, acab, np.stack([a, b, a, b], 1)], 1)
    second = np.stack([np.stack([b, d, c, d], 1), np.stack([b, d, d, c], 1), np.stack([c, d, d, c], 1)], 1)
    return tri, first.reshape(-1, 4), second.reshape(-1, 4)


def _pair_vectors(m: int, plus: list, minus: list, n_pairs: int) -> np.ndarray:
    """Rows (m, n_pairs) with +1 at the pair ids of each of ``plus`` and -1 at those of ``minus`` ((m,) each)."""
    vec = np.zeros((m, n_pairs))
    rows = np.arange(m)
    for k in plus:
        vec[rows, k] += 1
    for k in minus:
        vec[rows, k] -= 1
    return vec


def _one_time(index: dict, sigma_rel: dict, snr_cut: float) -> tuple[list, list]:
    """(triangles, quadrangles) of one time and frequency as visibility indices, each triangle (ab, bc, ac) with
    signs ``TRIANGLE_SIGNS`` for p < q. index: {(p, q) p < q: visibility index}; sigma_rel: σ_j/|V_j|."""
    stations = sorted({s for pq in index for s in pq})
    n = len(stations)
    pos = {s: k for k, s in enumerate(stations)}
    vis_at, sig_at, pair_at = np.full((n, n), -1, np.int64), np.full((n, n), np.inf), np.full((n, n), -1, np.int64)
    for k, (p, q) in enumerate(sorted(index)):
        vis_at[pos[p], pos[q]], sig_at[pos[p], pos[q]], pair_at[pos[p], pos[q]] = index[(p, q)], sigma_rel[(p, q)], k
    tri_pos, first, second = _candidates(n)
    a, b, c = tri_pos.T
    ok = (vis_at[a, b] >= 0) & (vis_at[b, c] >= 0) & (vis_at[a, c] >= 0)
    a, b, c = a[ok], b[ok], c[ok]
    tris = np.stack([vis_at[a, b], vis_at[b, c], vis_at[a, c]], 1)
    tri_sig = np.sqrt(sig_at[a, b] ** 2 + sig_at[b, c] ** 2 + sig_at[a, c] ** 2)
    tri_vec = _pair_vectors(len(a), [pair_at[a, b], pair_at[b, c]], [pair_at[a, c]], len(index))
    ok = ((vis_at[first, second] >= 0) & (sig_at[first, second] < 1)).all(1)  # |V| > σ: debiasable
    first, second = first[ok], second[ok]
    quads = vis_at[first, second]
    quad_sig = np.sqrt((sig_at[first, second] ** 2).sum(1))
    pairs = pair_at[first, second]
    quad_vec = _pair_vectors(len(pairs), [pairs[:, 0], pairs[:, 1]], [pairs[:, 2], pairs[:, 3]], len(index))
    out = []
    for items, sig, vecs, rank in ((tris, tri_sig, tri_vec, (n - 1) * (n - 2) // 2),
                                   (quads, quad_sig, quad_vec, n * (n - 3) // 2)):
        ok = np.flatnonzero(1 / np.maximum(sig, 1e-300) >= snr_cut)
        keep = _greedy(vecs, ok[np.argsort(sig[ok], kind="stable")], rank) if len(ok) else []
        out.append(items[keep].tolist())
    return out[0], out[1]


def closures(vis: np.ndarray, weight: np.ndarray, antenna1: np.ndarray, antenna2: np.ndarray, time_jd: np.ndarray,
             freq_hz: np.ndarray, snr_cut: float = 3.0, time_tol_s: float = TIME_TOL_S) -> Closures:
    """The non-redundant closures of visibilities (n,) with weights 1/σ² per real coordinate (module
    docstring), grouped by time (within ``time_tol_s``) and frequency. Flagged (w ≤ 0), zero-amplitude and
    autocorrelation samples take no part; a baseline seen twice in a group keeps its heavier sample."""
    vis, weight = np.asarray(vis, np.complex128), np.asarray(weight, np.float64)
    good = (weight > 0) & (np.abs(vis) > 0) & (antenna1 != antenna2) & np.isfinite(vis)
    sigma_rel = np.full(len(vis), np.inf)
    sigma_rel[good] = 1 / np.sqrt(weight[good]) / np.abs(vis[good])
    tkey = np.round(np.asarray(time_jd) * 86400 / max(time_tol_s, 1e-6)).astype(np.int64)
    groups: dict = {}
    for j in np.flatnonzero(good):
        p, q = sorted((int(antenna1[j]), int(antenna2[j])))
        g = groups.setdefault((tkey[j], float(freq_hz[j])), {})
        if (p, q) not in g or weight[j] > weight[g[(p, q)]]:
            g[(p, q)] = j
    tris, quads = [], []
    for index in groups.values():
        t, q = _one_time(index, {pq: sigma_rel[j] for pq, j in index.items()}, snr_cut)
        tris += t
        quads += q
    tri = np.asarray(tris, np.int64).reshape(-1, 3)
    sgn = np.where(antenna1[tri] < antenna2[tri], 1, -1) * TRIANGLE_SIGNS  # a sample stored as (q, p) is conj V_pq
    quad = np.asarray(quads, np.int64).reshape(-1, 4)
    sr2 = sigma_rel ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        debiased = np.sqrt(np.maximum(np.abs(vis) ** 2 - 1 / weight, 0))
    return Closures(tri, sgn, closure_phase(vis, tri, sgn), np.sqrt(sr2[tri].sum(1)), quad,
                    log_closure_amplitude(debiased, quad), np.sqrt(sr2[quad].sum(1)))

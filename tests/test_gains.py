"""Antenna gains and closure quantities: a gain solve in closed form, closure invariance, and ehtim's
closure χ² on a shared EHT file."""

from __future__ import annotations

import os

import numpy as np
import pytest

from ddrm.radio.closure import ALL_CANDIDATES_UP_TO, closure_phase, closures, log_closure_amplitude
from ddrm.radio.gains import GainConfig, interval_bounds, solution_intervals, solve_gains

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "visibilities")


def _array(n_ant: int, n_times: int, seed: int, gap_s: float = 600.0):
    """Every baseline at each of n_times times (two scans, 10 s apart within a scan), a random model."""
    rng = np.random.default_rng(seed)
    p, q = np.triu_indices(n_ant, 1)
    half = n_times // 2
    t_s = np.concatenate([np.arange(half) * 10.0, gap_s + np.arange(n_times - half) * 10.0])
    a1, a2 = np.tile(p, n_times), np.tile(q, n_times)
    time_jd = 2460000.5 + np.repeat(t_s, len(p)) / 86400
    model = (1 + 0.3 * np.abs(rng.normal(size=len(a1)))) * np.exp(1j * rng.uniform(-np.pi, np.pi, len(a1)))
    return rng, a1, a2, time_jd, model


def _gains(rng, n_int: int, n_ant: int) -> np.ndarray:
    return rng.uniform(0.7, 1.3, (n_int, n_ant)) * np.exp(1j * rng.uniform(-np.pi, np.pi, (n_int, n_ant)))


@pytest.mark.parametrize("mode,solnorm", [("phase", "all"), ("amp-phase", "all"), ("amp-phase", "interval")])
def test_a_gain_solve_recovers_known_gains_within_the_noise(mode, solnorm):
    n_ant, sigma = 8, 0.01
    rng, a1, a2, time_jd, model = _array(n_ant, 20, 0)
    interval = solution_intervals(time_jd, "scan")
    assert sorted(set(interval)) == [0, 1]
    true = _gains(rng, 2, n_ant)
    if mode == "phase":
        true = true / np.abs(true)
    gg = true[interval, a1] * np.conj(true[interval, a2])
    vis = gg * model + sigma * (rng.normal(size=len(model)) + 1j * rng.normal(size=len(model)))
    weight = np.full(len(vis), 1 / sigma ** 2)
    sol = solve_gains(vis, model, weight, a1, a2, interval, GainConfig(mode=mode, ref_antenna=3, solnorm=solnorm),
                      *interval_bounds(time_jd, interval))
    assert sol.solved.all() and (sol.reference == 3).all()
    expected = true * np.exp(-1j * np.angle(true[:, 3:4]))  # the reference antenna's phase is 0
    # solnorm: mean amplitude 1 over all intervals ("all") or within each ("interval")
    norm = np.abs(true).mean(axis=None if solnorm == "all" else 1, keepdims=True)
    expected /= norm
    # each gain from 7 baselines x 10 times of |M| ~ 1: its error ~ sigma / sqrt(70) ~ 1e-3
    assert np.abs(sol.gains - expected).max() < 6e-3
    scale = np.broadcast_to(norm ** 2, (2, 1))[interval, 0]  # the flux scale solnorm leaves to the model
    fitted = sol.per_visibility(a1, a2) * model * scale
    chi2 = (weight * np.abs(vis - fitted) ** 2).sum() / (2 * len(vis))
    assert 0.85 < chi2 < 1.1  # the data's noise, minus the fitted parameters
    rows = sol.table()
    assert len(rows) == 2 * n_ant and {"antenna", "interval", "amplitude", "phase_deg", "solved"} <= set(rows[0])


def test_without_a_normalisation_the_model_keeps_the_flux_scale_and_the_data_are_fitted():
    """A model 1/0.66 too bright overall (a closure image: its structure, not its amplitudes, came from the data):
    solnorm "none" lets the gains take the common scale, |g|² ≈ 0.66, and the corrected data fit the model to
    the noise; "all" forces a mean gain of 1 and leaves the model's scale error in every residual."""
    n_ant, sigma, c = 8, 0.01, 0.66
    rng, a1, a2, time_jd, model = _array(n_ant, 20, 1)
    interval = solution_intervals(time_jd, "scan")
    true = np.sqrt(c) * np.exp(1j * rng.uniform(-np.pi, np.pi, (2, n_ant)))
    vis = true[interval, a1] * np.conj(true[interval, a2]) * model + \
        sigma * (rng.normal(size=len(model)) + 1j * rng.normal(size=len(model)))
    weight = np.full(len(vis), 1 / sigma ** 2)
    chi2 = {}
    for solnorm in ("none", "all"):
        sol = solve_gains(vis, model, weight, a1, a2, interval,
                          GainConfig(mode="amp-phase", solnorm=solnorm, amp_sigma=10.0),
                          *interval_bounds(time_jd, interval))
        r = vis - sol.per_visibility(a1, a2) * model
        chi2[solnorm] = float((weight * np.abs(r) ** 2).sum() / (2 * len(r)))
        if solnorm == "none":
            assert np.abs(sol.gains).mean() ** 2 == pytest.approx(c, rel=0.01)
    assert 0.85 < chi2["none"] < 1.1 and chi2["all"] > 100, chi2
    with pytest.raises(ValueError, match="solnorm"):
        GainConfig(solnorm="median")


@pytest.mark.parametrize("mode", ["phase", "amp-phase"])
def test_the_gains_sigma_is_their_scatter_over_noise_draws(mode):
    """σ of each gain's phase and ln amplitude (the Laplace approximation, sqrt diag of the inverse normal
    matrix) against the scatter of 300 solves of the same gains under fresh noise: pooled over the free
    gains, the ratio is 1 within the draws' error (~3 %); the reference phase has σ 0. The ln amplitudes
    are compared after the solution's normalisation (solnorm), which removes the common mode from both."""
    n_ant, sigma, draws = 6, 0.05, 300
    rng, a1, a2, time_jd, model = _array(n_ant, 8, 1)
    interval = solution_intervals(time_jd, "scan")
    true = _gains(rng, 2, n_ant)
    if mode == "phase":
        true = true / np.abs(true)
    clean = true[interval, a1] * np.conj(true[interval, a2]) * model
    weight = np.full(len(clean), 1 / sigma ** 2)
    config = GainConfig(mode=mode, ref_antenna=0, amp_sigma=10.0)  # a prior too wide to matter here
    sols = [solve_gains(clean + sigma * (rng.normal(size=len(clean)) + 1j * rng.normal(size=len(clean))), model,
                        weight, a1, a2, interval, config) for _ in range(draws)]
    phases = np.angle(np.stack([s.gains for s in sols]))
    predicted = np.stack([s.sigma for s in sols]).mean(0)  # (I, A, 2)
    assert (predicted[:, 0, 1] == 0).all() and (predicted[:, 1:, 1] > 0).all()
    ratio = np.sqrt((phases[:, :, 1:].var(0)).mean() / (predicted[:, 1:, 1] ** 2).mean())
    assert 0.9 < ratio < 1.1, ratio
    if mode == "amp-phase":
        ln_amp = np.log(np.abs(np.stack([s.gains for s in sols])))
        n = 2 * n_ant  # solnorm "all": the mean over every gain is removed, a share 1/n of each one's variance
        ratio = np.sqrt(ln_amp.var(0).mean() / ((predicted[..., 0] ** 2).mean() * (1 - 1 / n)))
        assert 0.85 < ratio < 1.15, ratio
        rows = sols[0].table()
        assert {"ln_amplitude_sigma", "phase_sigma_deg"} <= set(rows[0])
    else:
        assert (predicted[..., 0] == 0).all()  # the amplitudes are fixed in phase-only mode


def test_antennas_without_data_and_too_small_intervals_keep_unit_gain():
    n_ant = 5
    rng, a1, a2, time_jd, model = _array(n_ant, 6, 1)
    interval = solution_intervals(time_jd, 30.0)  # 30 s pieces: 3 times per piece
    weight = np.ones(len(model))
    first = interval == 0
    weight[first & ((a1 == 4) | (a2 == 4))] = 0  # antenna 4 flagged in interval 0
    last = interval == interval.max()
    weight[last & ~((a1 == 0) & (a2 == 1))] = 0  # interval 2 keeps a single baseline: 2 antennas
    vis = model * np.exp(0.3j)
    sol = solve_gains(vis, model, weight, a1, a2, interval, GainConfig(mode="amp-phase"))
    assert np.isfinite(sol.gains).all()
    assert not sol.solved[0, 4] and sol.gains[0, 4] == 1 and sol.solved[0, :4].all()
    assert not sol.solved[-1].any() and (sol.gains[-1] == 1).all() and sol.reference[-1] == -1
    with pytest.raises(ValueError, match="solint"):
        GainConfig(solint=-5)
    with pytest.raises(ValueError, match="mode"):
        GainConfig(mode="amp")


def test_closures_are_non_redundant_and_do_not_change_with_the_gains():
    """Noise scales with the gains (as a wrong SEFD's would): then closure values, σ and the chosen set
    are all unchanged, to rounding."""
    for n_ant in (6, 14):  # every candidate quadrangle, and the two-reference-station set above 12
        rng, a1, a2, time_jd, model = _array(n_ant, 4, 2)
        weight = np.full(len(model), 1e4)
        freq = np.full(len(model), 2.3e11)
        c = closures(model, weight, a1, a2, time_jd, freq, snr_cut=0)
        assert len(c.phase) == 4 * (n_ant - 1) * (n_ant - 2) // 2 and len(c.logamp) == 4 * n_ant * (n_ant - 3) // 2
        g = _gains(rng, 1, n_ant)[0]
        gg = g[a1] * np.conj(g[a2])
        d = closures(model * gg, weight / np.abs(gg) ** 2, a1, a2, time_jd, freq, snr_cut=0)
        assert (d.triangles == c.triangles).all() and (d.quadrangles == c.quadrangles).all()
        assert np.abs(np.angle(np.exp(1j * (d.phase - c.phase)))).max() < 1e-12
        assert np.abs(d.logamp - c.logamp).max() < 1e-12 and np.allclose(d.sigma_phase, c.sigma_phase)
        # the gain-free χ² of the true model is zero against noiseless data, corrupted or not (weights so
        # large that debiasing the amplitudes, |V|² - σ², changes nothing)
        e = closures(model * gg, 1e16 / np.abs(gg) ** 2, a1, a2, time_jd, freq, snr_cut=0)
        assert e.chi2_phase(model) < 1e-12 and e.chi2_logamp(model) < 1e-12
    # a conjugated storage order (antenna1 > antenna2) gives the same closure phases
    swapped = closures(np.conj(model), weight, a2, a1, time_jd, freq, snr_cut=0)
    np.testing.assert_allclose(swapped.phase, c.phase, atol=1e-12)
    assert np.allclose(closure_phase(model, c.triangles, c.signs), c.phase)
    debiased = np.sqrt(np.abs(model) ** 2 - 1 / weight)  # |V|² - σ²
    assert np.allclose(log_closure_amplitude(debiased, c.quadrangles), c.logamp)


def _baseline_vectors(rows: np.ndarray, a1: np.ndarray, a2: np.ndarray, coef: tuple, n_ant: int) -> np.ndarray:
    """Each closure's row over the baselines (p < q) of one time: coef[k] at the baseline of its k-th sample."""
    out = np.zeros((len(rows), n_ant * n_ant))
    for k, c in enumerate(coef):
        np.add.at(out, (np.arange(len(rows)), a1[rows[:, k]] * n_ant + a2[rows[:, k]]), c)
    return out


@pytest.mark.parametrize("n_ant", [7, 14])
def test_the_closure_set_is_the_greedy_one_by_signal_to_noise(n_ant):
    """One time, every baseline, uneven noise: the chosen closure phases (log closure amplitudes) are linearly
    independent, as many as (n-1)(n-2)/2 (n(n-3)/2), and every candidate closure that passes the S/N cut lies
    in the span of the chosen ones with σ no larger than its own: the greedy choice by S/N, whatever the
    implementation. The candidates are enumerated here from their definition."""
    from itertools import combinations

    rng, a1, a2, time_jd, model = _array(n_ant, 1, 3)
    weight = rng.uniform(30, 3000, len(model))
    c = closures(model, weight, a1, a2, time_jd, np.full(len(model), 2.3e11), snr_cut=3)
    where = {(int(p), int(q)): j for j, (p, q) in enumerate(zip(a1, a2))}
    tri = np.array([[where[a, b], where[b, d], where[a, d]] for a, b, d in combinations(range(n_ant), 3)])
    groups = combinations(range(n_ant), 4) if n_ant <= ALL_CANDIDATES_UP_TO else \
        ((0, 1, x, y) for x, y in combinations(range(2, n_ant), 2))
    quad = np.array([[where[p] for p in four] for a, b, x, y in groups for four in
                     (((a, b), (x, y), (a, x), (b, y)), ((a, b), (x, y), (a, y), (b, x)),
                      ((a, x), (b, y), (a, y), (b, x)))])
    sr = 1 / np.sqrt(weight) / np.abs(model)
    for chosen, sig, cand, coef, rank in (
            (c.triangles, c.sigma_phase, tri, (1, 1, -1), (n_ant - 1) * (n_ant - 2) // 2),
            (c.quadrangles, c.sigma_logamp, quad, (1, 1, -1, -1), n_ant * (n_ant - 3) // 2)):
        if chosen is c.quadrangles:
            cand = cand[(sr[cand] < 1).all(1)]  # |V| > σ: debiasable
        cand_sig = np.sqrt((sr[cand] ** 2).sum(1))
        cand = cand[1 / cand_sig >= 3]
        cand_sig = cand_sig[1 / cand_sig >= 3]
        vec = _baseline_vectors(chosen, a1, a2, coef, n_ant)
        assert np.linalg.matrix_rank(vec) == len(chosen) <= rank
        assert len(chosen) == min(rank, np.linalg.matrix_rank(_baseline_vectors(cand, a1, a2, coef, n_ant)))
        for row, s in zip(_baseline_vectors(cand, a1, a2, coef, n_ant), cand_sig):
            basis = vec[sig <= s * (1 + 1e-12)]
            residual = row - basis.T @ np.linalg.lstsq(basis.T, row, rcond=None)[0] if len(basis) else row
            assert np.linalg.norm(residual) < 1e-8


def test_closure_chi2_agrees_with_ehtim_on_a_shared_eht_file():
    """ehtim's Obsdata.chisq (closure phases and log closure amplitudes, S/N >= 3, direct FT, delta
    pixels) against ours for an asymmetric two-Gaussian model. ehtim treats the file's RR and LL copies as
    independent (σ/√2 for Stokes I), so ours is given weights 2w here. Closure phases: the same count and
    χ² to 1e-5 (the same closure set per time). Log closure amplitudes: ehtim keeps its minimal set by
    site order and then cuts on S/N; ours picks the non-redundant set by S/N among those passing the
    cut, so more closures and a χ² within 15 %."""
    path = os.path.join(SHARED, "SR1_M87_2017_095_lo_hops_netcal_StokesI.uvfits")
    if not os.path.isfile(path):
        pytest.skip(f"shared EHT file absent: {path}")
    eh = pytest.importorskip("ehtim", reason="ehtim is not installed (pip install -e '.[test]')")
    import torch
    from ehtim.observing.pulses import deltaPulse2D

    from ddrm.radio.gridding import ARCSEC
    from ddrm.radio.nufft import degrid
    from sources.uvfits import read_uvfits

    vis = read_uvfits(path)
    N, scale = 64, 2e-6  # arcsec: 2 µas pixels
    r, c = np.mgrid[:N, :N] - N // 2
    img = np.exp(-((r - 8) ** 2 + (c - 5) ** 2) / 32) + 0.5 * np.exp(-((r + 6) ** 2 + (c + 3) ** 2) / 18)
    img *= 0.6 / img.sum()
    model = np.asarray(degrid(uv=vis.uv, image=torch.from_numpy(img), pixel_size=scale * ARCSEC))
    ours = closures(vis.vis, 2 * vis.weight, vis.antenna1, vis.antenna2, vis.time_jd, vis.freq_hz, snr_cut=3)
    obs = eh.obsdata.load_uvfits(path)
    # our row r runs North, ehtim's row 0 is the top (North): the array flips vertically
    im = eh.image.Image(np.ascontiguousarray(img[::-1]), scale * ARCSEC, obs.ra, obs.dec, rf=obs.rf,
                        source=obs.source, mjd=obs.mjd, pulse=deltaPulse2D)
    cp = obs.chisq(im, dtype="cphase", ttype="direct", snrcut=3)
    lc = obs.chisq(im, dtype="logcamp", ttype="direct", snrcut=3)
    assert len(ours.phase) == len(obs.c_phases(count="min", snrcut=3))
    assert ours.chi2_phase(model) == pytest.approx(cp, rel=1e-5)
    assert ours.chi2_logamp(model) == pytest.approx(lc, rel=0.15)
    flipped = np.asarray(degrid(uv=vis.uv, image=torch.from_numpy(img[::-1].copy()), pixel_size=scale * ARCSEC))
    assert abs(ours.chi2_phase(flipped) - cp) > 0.1 * cp  # the orientation matters: the check can fail

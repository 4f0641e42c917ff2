"""Antenna gains and closure quantities: a gain solve in closed form, closure invariance, and ehtim's
closure χ² on a shared EHT file."""

from __future__ import annotations

import os

import numpy as np
import pytest

from ddrm.interferometry.closure import closure_phase, closures, log_closure_amplitude
from ddrm.interferometry.gains import GainConfig, interval_bounds, solution_intervals, solve_gains

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "visibilities")


def _array(n_ant: int, n_times: int, seed: int, gap_s: float = 600.0):
    """Every baseline at each of n_times times (two scans, 10 s apart within a scan), a random model."""
    rng = np.random.default_rng(seed)
    p, q = np.triu_indices(n_ant, 1)
    half = n_times // 2
    t_s = np.concatenate([np.arange(half) * 10.0, gap_s + np.arange(n_times - half) * 10.0])
    a1, a2 = np.tile(p, n_times), np.tile(q, n_times)
    time_jd = 2460000.5 + np.repeat(t_s, len(p)) / 86400
    model = (1 + rng.normal(size=len(a1))) * np.exp(1j * rng.uniform(-np.pi, np.pi, len(a1)))
    return rng, a1, a2, time_jd, model


def _gains(rng, n_int: int, n_ant: int) -> np.ndarray:
    return rng.uniform(0.7, 1.3, (n_int, n_ant)) * np.exp(1j * rng.uniform(-np.pi, np.pi, (n_int, n_ant)))


@pytest.mark.parametrize("mode", ["phase", "amp-phase"])
def test_a_gain_solve_recovers_known_gains_within_the_noise(mode):
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
    sol = solve_gains(vis, model, weight, a1, a2, interval, GainConfig(mode=mode, ref_antenna=3),
                      *interval_bounds(time_jd, interval))
    assert sol.solved.all() and (sol.reference == 3).all()
    expected = true * np.exp(-1j * np.angle(true[:, 3:4]))  # the reference antenna's phase is 0
    # each gain from 7 baselines x 10 times of |M| ~ 1: its error ~ sigma / sqrt(70) ~ 1e-3
    assert np.abs(sol.gains - expected).max() < 6e-3
    fitted = sol.per_visibility(a1, a2) * model
    chi2 = (weight * np.abs(vis - fitted) ** 2).sum() / (2 * len(vis))
    assert 0.85 < chi2 < 1.1  # the data's noise, minus the fitted parameters
    rows = sol.table()
    assert len(rows) == 2 * n_ant and {"antenna", "interval", "amplitude", "phase_deg", "solved"} <= set(rows[0])


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
        # the gain-free χ² of the true model is exactly zero against noiseless data, corrupted or not
        assert d.chi2_phase(model) < 1e-20 and d.chi2_logamp(model) < 1e-20
    # a conjugated storage order (antenna1 > antenna2) gives the same closure phases
    swapped = closures(np.conj(model), weight, a2, a1, time_jd, freq, snr_cut=0)
    np.testing.assert_allclose(swapped.phase, c.phase, atol=1e-12)
    assert np.allclose(closure_phase(model, c.triangles, c.signs), c.phase)
    assert np.allclose(log_closure_amplitude(model, c.quadrangles), c.logamp)

"""The held-out posterior predictive check in closed form: a dense Gaussian linear problem whose posterior is
known exactly. Its own samples put 68 % and 95 % of held-out z inside ±1 and ±2; a posterior whose spread is
shrunk is caught, and the conformal scale fitted on one half of the held-out data restores the other's."""

import numpy as np
import pytest

import ddrm.radio.predictive as pp


def _gaussian_problem(seed: int, n_x: int = 30, n_fit: int = 10, n_held: int = 3000, sigma: float = 0.3):
    """x ~ N(0, I); fitted data y = A x + σ n; held-out data y_h = B x + σ n'. Returns the held-out data, the
    exact posterior's mean and covariance, B and σ. With fewer data than unknowns the posterior is broad, and its
    spread, not the noise, sets the predictive width (so the scale c is well determined)."""
    rng = np.random.default_rng(seed)
    A, B = rng.normal(size=(n_fit, n_x)), rng.normal(size=(n_held, n_x)) / np.sqrt(n_x)
    x = rng.normal(size=n_x)
    y, y_h = A @ x + sigma * rng.normal(size=n_fit), B @ x + sigma * rng.normal(size=n_held)
    cov = np.linalg.inv(np.eye(n_x) + A.T @ A / sigma ** 2)  # closed form: (I + AᵀA/σ²)⁻¹
    mean = cov @ A.T @ y / sigma ** 2
    return y_h, mean, cov, B, sigma


@pytest.mark.parametrize("base", [0, 1000])
def test_a_calibrated_posterior_covers_held_out_data_at_the_nominal_rates(base):
    """Pooled over 100 independent truths (60 held-out data each): the held-out z of one truth share its
    posterior error, so one truth's coverage scatters far more than binomially (over seeds: mean z² ± 0.28,
    68 % share ± 0.067); pooled, the spread over 20 groups was ± 0.028, 0.0076 and 0.0034, so these bounds are
    3.5-4.5 of it."""
    zs = []
    for seed in range(base, base + 100):
        y_h, mean, cov, B, sigma = _gaussian_problem(seed, n_held=60)
        rng = np.random.default_rng(10_000 + seed)
        S = 200
        samples = rng.multivariate_normal(mean, cov, size=S)  # exact posterior draws
        r, s2, v = pp.amplitude_residuals(y_h, np.full(len(y_h), sigma), samples @ B.T)
        zs.append(pp.z_scores(r, s2, v, S))
    out = pp.check(np.concatenate(zs))
    assert out["n"] == 6000
    assert abs(out["coverage_68"] - 0.6827) < 0.03 and abs(out["coverage_95"] - 0.9545) < 0.015
    assert abs(out["mean_z2"] - 1) < 0.1
    y_h, mean, cov, B, sigma = _gaussian_problem(base)
    samples = np.random.default_rng(base).multivariate_normal(mean, cov, size=400)
    r, s2, v = pp.amplitude_residuals(y_h, np.full(len(y_h), sigma), samples @ B.T)
    assert 0.5 < pp.conformal_scale(r, s2, v, 400) < 2.0  # nothing to recalibrate (one truth: its scatter)


def test_a_shrunk_posterior_is_caught_and_the_cross_fitted_scale_restores_it():
    y_h, mean, cov, B, sigma = _gaussian_problem(2, sigma=0.05)  # the posterior's spread dominates the noise
    rng = np.random.default_rng(7)
    S = 200
    shrunk = mean + 0.25 * (rng.multivariate_normal(mean, cov, size=S) - mean)  # 4x too confident
    r, s2, v = pp.amplitude_residuals(y_h, np.full(len(y_h), sigma), shrunk @ B.T)
    raw = pp.check(pp.z_scores(r, s2, v, S))
    assert raw["coverage_68"] < 0.4 and raw["mean_z2"] > 4
    c = pp.conformal_scale(r, s2, v, S)
    assert 3.0 < c < 5.0  # about the 4 the spread was shrunk by
    half = np.random.default_rng(0).random(len(r)) < 0.5
    honest = pp.cross_fitted(r, s2, v, S, half)
    assert abs(honest["coverage_68"] - 0.6827) < 0.04 and abs(honest["coverage_95"] - 0.9545) < 0.03


def test_visibility_and_closure_phase_residuals_in_closed_form():
    models = np.array([[1 + 1j, 2.0], [3 + 1j, 2.0]])
    r, s2, v = pp.visibility_residuals(np.array([2 + 2j, 2.0]), np.array([4.0, 1.0]), models)
    assert np.allclose(r, [0, 0, 1, 0]) and np.allclose(s2, [0.25, 1, 0.25, 1]) and np.allclose(v, [2, 0, 0, 0])
    r, s2, v = pp.closure_phase_residuals(np.array([np.pi - 0.1]), np.array([0.2]), np.array([[-np.pi + 0.1]] * 3))
    assert np.allclose(r, [-0.2]) and np.allclose(v, [0], atol=1e-12) and np.allclose(s2, [0.04])  # wrapped
    z = np.array([0.5, -1.5, 2.5, np.nan])
    assert pp.check(z) == {"mean_z2": pytest.approx((0.25 + 2.25 + 6.25) / 3), "coverage_68": pytest.approx(1 / 3),
                           "coverage_95": pytest.approx(2 / 3), "n": 3}
    with pytest.raises(ValueError, match="S >= 2"):
        pp.visibility_residuals(np.ones(2), np.ones(2), np.ones((1, 2)))


def test_a_fractional_systematic_error_is_met_at_both_levels_by_the_scale_and_the_held_out_bound():
    """Held-out data with an extra error f·|Bx| (model error grows with the signal, as on bright baselines) and
    a well-determined posterior: one scale c meets 68 % but leaves the 95 % tail short at |z| < 2; the tail bound
    k fitted on the other half meets it on unseen data. With nothing systematic, c stays near 1."""
    rng = np.random.default_rng(11)
    n_x, n_fit, n_held, sigma, f_true, S = 30, 300, 4000, 0.05, 0.3, 200
    A = rng.normal(size=(n_fit, n_x))
    B = rng.normal(size=(n_held, n_x)) / np.sqrt(n_x) * np.exp(rng.normal(0, 1.5, (n_held, 1)))  # signals vary
    x = rng.normal(size=n_x)
    y = A @ x + sigma * rng.normal(size=n_fit)
    cov = np.linalg.inv(np.eye(n_x) + A.T @ A / sigma ** 2)
    mean = cov @ A.T @ y / sigma ** 2
    models = rng.multivariate_normal(mean, cov, size=S) @ B.T
    y_h = B @ x + sigma * rng.normal(size=n_held) + f_true * np.abs(models.mean(0)) * rng.normal(size=n_held)
    r, s2, v = pp.amplitude_residuals(y_h, np.full(n_held, sigma), models)
    c, k = pp.recalibration(r, s2, v, S)
    assert c > 3 and k > 2.5  # the samples' spread must grow to meet 68 %, and the tails are heavier than it
    half = np.random.default_rng(0).random(n_held) < 0.5
    two_sigma, tail = pp.cross_fitted(r, s2, v, S, half), pp.cross_fitted(r, s2, v, S, half, tail=True)
    assert abs(two_sigma["coverage_68"] - 0.6827) < 0.03 and two_sigma["coverage_95"] < 0.91  # one scale: short
    assert tail["coverage_68"] == two_sigma["coverage_68"] and abs(tail["coverage_95"] - 0.9545) < 0.02
    y_0, mean_0, cov_0, B_0, sigma_0 = _gaussian_problem(3, sigma=0.05)  # nothing systematic
    m_0 = rng.multivariate_normal(mean_0, cov_0, size=S) @ B_0.T
    r0, s20, v0 = pp.amplitude_residuals(y_0, np.full(len(y_0), sigma_0), m_0)
    c0, k0 = pp.recalibration(r0, s20, v0, S)
    assert 0.8 < c0 < 1.25 and 2 <= k0 < 2.2


def test_the_tail_bound_is_the_conformal_quantile_and_never_below_two():
    z = 0.1 * np.arange(1, 101)  # |z| 0.1 .. 10: rank ⌈101 × 0.9545⌉ = 97
    assert pp.tail_bound(-z) == pytest.approx(9.7)
    assert pp.tail_bound(np.r_[z[:10], np.nan]) == 2.0  # all under 2 (the largest is the bound here): 2
    assert pp.tail_bound(np.zeros(0)) == 2.0
    check = pp.check(np.array([0.5, 1.5, 2.5, 3.5]), np.array([1.0, 2.0, 3.0, 3.0]))
    assert check["coverage_95"] == 0.75 and check["coverage_68"] == 0.25


def test_heavy_tails_meet_the_95_level_cross_fitted_at_the_held_out_bound():
    """Student-t (ν = 4) residuals with a systematic error: (c, k) with the Gaussian's bound 2 leaves the
    cross-fitted 95 % share short; at the bound k fitted on the other half it meets 0.9545 within 0.012, with
    the 68 % share unchanged and nominal."""
    S, n, nu = 8, 2000, 4
    rng = np.random.default_rng(0)
    s2, amp = rng.uniform(0.5, 2, n), rng.uniform(1, 10, n)
    v = rng.uniform(0.2, 3, n) * s2
    r = rng.standard_t(nu, n) * np.sqrt((nu - 2) / nu) * np.sqrt(s2 + 0.09 * amp ** 2 + (1 + 1 / S) * v)
    half = rng.random(n) < 0.5
    gaussian, tail = pp.cross_fitted(r, s2, v, S, half), pp.cross_fitted(r, s2, v, S, half, tail=True)
    assert gaussian["coverage_95"] < 0.945 and abs(tail["coverage_95"] - 0.9545) < 0.012
    assert tail["coverage_68"] == gaussian["coverage_68"] and abs(tail["coverage_68"] - 0.6827) < 0.03
    c, k = pp.recalibration(r, s2, v, S)
    assert k == pp.tail_bound(pp.z_scores(r, s2, v, S, c)) > 2.1


def test_a_check_that_passes_as_drawn_is_not_recalibrated():
    """Thermal noise far above the posterior's spread: the shares hardly move with c, so a fitted c would be
    noise; the posterior as drawn meets both levels and keeps c = 1 (k the tail bound there). Halved, it is
    still caught."""
    y_h, mean, cov, B, sigma = _gaussian_problem(4, n_fit=200, sigma=1.0)
    rng = np.random.default_rng(5)
    S = 100
    samples = rng.multivariate_normal(mean, cov, size=S)
    r, s2, v = pp.amplitude_residuals(y_h, np.full(len(y_h), sigma), samples @ B.T)
    assert float(np.median(v)) < 0.05 * sigma ** 2
    assert pp.recalibration(r, s2, v, S) == (1.0, pp.tail_bound(pp.z_scores(r, s2, v, S)))
    y_h, mean, cov, B, sigma = _gaussian_problem(4, sigma=0.05)
    shrunk = mean + 0.5 * (rng.multivariate_normal(mean, cov, size=S) - mean)
    r, s2, v = pp.amplitude_residuals(y_h, np.full(len(y_h), sigma), shrunk @ B.T)
    assert pp.recalibration(r, s2, v, S)[0] > 1.5


def test_block_means_in_closed_form():
    d, w = np.array([1 + 1j, 3 + 1j, 5.0]), np.array([1.0, 3.0, 2.0])
    models = np.array([[0, 4, 5.0], [2, 0, 1.0]])
    mean, wsum, m = pp.block_means(np.array([0, 0, 1]), w, d, models)
    assert np.allclose(mean, [(1 + 1j + 3 * (3 + 1j)) / 4, 5]) and np.allclose(wsum, [4, 2])
    assert np.allclose(m, [[3, 5], [0.5, 1]])


def test_closure_blocks_in_closed_form():
    # three closure phases of one triangle: the phasor mean's argument, σ̄² = 1/(w̄ |P|²)
    phase, sigma = np.array([0.1, 0.3, 2.0]), np.array([0.1, 0.2, 0.5])
    models = np.array([[0.0, 0.2, 2.2], [0.2, 0.4, 1.8]])
    r, s2, v = pp.closure_phase_blocks(np.array([0, 0, 1]), phase, sigma, models)
    w = 1 / sigma ** 2
    p0 = (w[0] * np.exp(0.1j) + w[1] * np.exp(0.3j)) / (w[0] + w[1])
    m0 = np.angle(np.exp(1j * np.array([[0.0, 0.2], [0.2, 0.4]])) @ w[:2] / (w[0] + w[1]))
    assert np.isclose(r[0], np.angle(p0 / np.exp(1j * np.angle(np.exp(1j * m0).mean()))))
    assert np.isclose(s2[0], 1 / ((w[0] + w[1]) * abs(p0) ** 2))
    assert np.isclose(s2[1], sigma[2] ** 2) and np.isclose(r[1], 0.0)  # a block of one: the closure itself
    # identical phases in a block of n: σ̄² = σ²/n, the thermal noise averaged down
    _, s2, _ = pp.closure_phase_blocks(np.zeros(4, int), np.full(4, 0.5), np.full(4, 0.2), np.zeros((2, 4)))
    assert np.isclose(s2[0], 0.2 ** 2 / 4)
    # log closure amplitudes average linearly: exact
    r, s2, v = pp.amplitude_blocks(np.array([0, 0, 1]), np.array([1.0, 2.0, 3.0]), np.array([1.0, 1.0, 0.5]),
                                   np.array([[1.0, 1.0, 3.0], [2.0, 2.0, 3.5]]))
    assert np.allclose(r, [1.5 - 1.5, 3 - 3.25]) and np.allclose(s2, [0.5, 0.25]) and np.allclose(v, [0.5, 0.125])


def test_closure_blocks_share_a_triangle_its_orientation_scan_and_frequency():
    from imager.predictive import _closure_block_key

    # visibilities: baselines (0,1) (1,2) (0,2) at two times of one scan, the same at a later scan, and one
    # (1,0)-ordered copy of (0,1) at the first time; two more samples of the first scan
    a1 = np.array([0, 1, 0, 0, 1, 0, 0, 1, 0, 1, 0, 0])
    a2 = np.array([1, 2, 2, 1, 2, 2, 1, 2, 2, 0, 1, 1])
    t = np.array([0, 0, 0, 30, 30, 30, 7200, 7200, 7200, 0, 60, 90]) / 86400 + 2460000.0
    key = _closure_block_key({"antenna1": a1, "antenna2": a2, "time_jd": t, "freq_hz": np.full(12, 1e9)})
    members = np.array([[0, 1, 2], [3, 4, 5], [6, 7, 8], [0, 1, 2], [9, 1, 2]])
    signs = np.array([[1, 1, -1], [1, 1, -1], [1, 1, -1], [-1, -1, 1], [-1, 1, -1]])
    b = key(members, signs)
    assert b[0] == b[1]  # one triangle, one scan
    assert b[2] != b[0]  # another scan
    assert b[3] != b[0]  # the other way round
    assert b[4] == b[0]  # (1,0) conjugated is (0,1)
    q = key(members[:2, [0, 1, 2, 0]], np.array([[1, 1, -1, -1]] * 2), oriented=False)
    assert q[0] == q[1]


def _station_file(seed: int, scale: float = 1e-3):
    """A 5-station observation (3 scans of 4 integrations) of a Gaussian pair at N = 16, scale arcsec/pixel,
    with random station phases per integration, and 8 posterior samples near the truth."""
    import torch

    from ddrm.radio.gridding import ARCSEC
    from ddrm.radio.nufft import degrid
    from ddrm.radio.visibilities import Visibilities

    rng = np.random.default_rng(seed)
    r = np.arange(16) - 8
    blob = lambda r0, c0, w: np.exp(-((r[:, None] - r0) ** 2 + (r[None, :] - c0) ** 2) / w)  # noqa: E731
    truth = blob(2, 0, 4) + 0.5 * blob(-3, 2, 3)
    pairs = [(a, b) for a in range(5) for b in range(a + 1, 5)]
    times = np.concatenate([s * 3600 + np.arange(4) * 30.0 for s in range(3)])
    a1, a2, t = (np.array(x) for x in zip(*[(a, b, tt) for tt in times for a, b in pairs]))
    xy = rng.uniform(-1, 1, (5, 2)) * 0.12 / (scale * ARCSEC)  # stations (wavelengths): baselines on the field
    rot = np.exp(1j * t / 86400 * 2 * np.pi)
    uvc = (xy[a1, 0] - xy[a2, 0] + 1j * (xy[a1, 1] - xy[a2, 1])) * rot
    uv = np.stack([uvc.real, uvc.imag], 1)
    weight = np.full(len(t), 400.0)
    vis = degrid(uv=uv, image=torch.from_numpy(truth), pixel_size=scale * ARCSEC)
    vis = vis + (rng.normal(size=len(t)) + 1j * rng.normal(size=len(t))) / np.sqrt(weight)
    phase = rng.uniform(-np.pi, np.pi, (len(times), 5))
    k = np.searchsorted(times, t)
    raw = vis * np.exp(1j * (phase[k, a1] - phase[k, a2]))
    data = Visibilities(uv=uv, vis=raw, weight=weight, antenna1=a1, antenna2=a2, time_jd=2460000.5 + t / 86400,
                        freq_hz=np.full(len(t), 2.3e11))
    held = (a1 == 0) & (a2 == 1) | (a1 == 2) & (a2 == 4) & (t > 3000)
    samples = torch.from_numpy(truth[None] + 0.02 * rng.normal(size=(8, 16, 16)))
    return data.subset(held), data.subset(~held), samples


@pytest.mark.parametrize("likelihood, fitted_on", [("closures", "closure_phase_blocks"),
                                                   ("exact", "visibility_blocks")])
def test_a_closure_posterior_is_recalibrated_on_its_gain_free_block_check(likelihood, fitted_on):
    from types import SimpleNamespace

    from imager.predictive import predictive_summary

    held, kept, samples = _station_file(0)
    imaged = SimpleNamespace(result=SimpleNamespace(samples=samples, likelihood=likelihood))
    out, c, _ = predictive_summary(held, held, kept, imaged, 1e-3, seed=1)
    assert out["conformal_fitted_on"] == fitted_on and c == out["conformal_scale"] > 0
    blocks, single = out["closure_phase_blocks"], out["closure_phases"]
    assert 0 < blocks["n"] < single["n"] and out["log_closure_amplitude_blocks"]["n"] > 0
    # gain-free: other station phases leave the closure checks as they were
    held2, kept2, _ = _station_file(0)
    phase = np.exp(1j * np.random.default_rng(5).uniform(-np.pi, np.pi, 5))
    turn = lambda v: v.with_values(v.vis * phase[v.antenna1] * phase[v.antenna2].conj())  # noqa: E731
    out2, _, _ = predictive_summary(turn(held2), turn(held2), turn(kept2), imaged, 1e-3, seed=1)
    for name in ("closure_phase_blocks", "log_closure_amplitude_blocks"):
        assert out2[name] == pytest.approx(out[name], rel=1e-9), name

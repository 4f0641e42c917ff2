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


@pytest.mark.parametrize("seed", [0, 1])
def test_a_calibrated_posterior_covers_held_out_data_at_the_nominal_rates(seed):
    y_h, mean, cov, B, sigma = _gaussian_problem(seed)
    rng = np.random.default_rng(100 + seed)
    S = 400
    samples = rng.multivariate_normal(mean, cov, size=S)  # exact posterior draws
    r, s2, v = pp.amplitude_residuals(y_h, np.full(len(y_h), sigma), samples @ B.T)
    out = pp.check(pp.z_scores(r, s2, v, S))
    assert out["n"] == len(y_h)
    # one truth: the held-out z share its posterior error, so the share scatters more than binomially
    assert abs(out["coverage_68"] - 0.6827) < 0.05 and abs(out["coverage_95"] - 0.9545) < 0.025
    assert abs(out["mean_z2"] - 1) < 0.1
    assert 0.8 < pp.conformal_scale(r, s2, v, S) < 1.25  # nothing to recalibrate


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


def test_a_fractional_systematic_error_is_recovered_where_one_scale_cannot_meet_both_levels():
    """Held-out data with an extra error f·|Bx| (model error grows with the signal, as on bright baselines) and
    a well-determined posterior: one scale c meets 68 % but leaves the 95 % tail short; (c, f) recovers f and
    meets both on unseen data."""
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
    amp = np.abs(models.mean(0))
    c, f = pp.recalibration(r, s2, v, S, amp)
    assert 0.25 < f < 0.35  # the data's systematic error, not the posterior's spread, was missing
    assert c == 1.0  # the samples' spread is negligible here: any c fits, and the map is not shrunk below as drawn
    half = np.random.default_rng(0).random(n_held) < 0.5
    c_only, both = pp.cross_fitted(r, s2, v, S, half), pp.cross_fitted(r, s2, v, S, half, amp)
    assert abs(c_only["coverage_68"] - 0.6827) < 0.03 and c_only["coverage_95"] < 0.91  # one scale: tails short
    assert abs(both["coverage_68"] - 0.6827) < 0.03 and abs(both["coverage_95"] - 0.9545) < 0.02
    y_0, mean_0, cov_0, B_0, sigma_0 = _gaussian_problem(3, sigma=0.05)  # nothing systematic: f stays near 0
    m_0 = rng.multivariate_normal(mean_0, cov_0, size=S) @ B_0.T
    r0, s20, v0 = pp.amplitude_residuals(y_0, np.full(len(y_0), sigma_0), m_0)
    c0, f0 = pp.recalibration(r0, s20, v0, S, np.abs(m_0.mean(0)))
    assert f0 < 0.05 and 0.8 < c0 < 1.25


def test_a_check_that_passes_as_drawn_is_not_recalibrated():
    """Thermal noise far above the posterior's spread: the shares hardly move with c, so a fitted c would be
    noise; the posterior as drawn meets both levels and keeps c = 1, f = 0. Halved, it is still caught."""
    y_h, mean, cov, B, sigma = _gaussian_problem(4, n_fit=200, sigma=1.0)
    rng = np.random.default_rng(5)
    S = 100
    samples = rng.multivariate_normal(mean, cov, size=S)
    r, s2, v = pp.amplitude_residuals(y_h, np.full(len(y_h), sigma), samples @ B.T)
    assert float(np.median(v)) < 0.05 * sigma ** 2
    assert pp.recalibration(r, s2, v, S, np.abs((samples @ B.T).mean(0))) == (1.0, 0.0)
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

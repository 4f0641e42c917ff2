"""The measurement equation at each visibility's (u, v): the degridder against a direct sum, the dirty
image as its adjoint, the Toeplitz Gram operator against a dense matrix, and the exact likelihood step
against the closed-form Gaussian posterior."""

import numpy as np
import pytest
import torch

from ddrm.radio.gridding import ARCSEC, cell_coordinates
from ddrm.radio.likelihood import VisibilityLikelihood, likelihood_step, solve
from ddrm.radio.nufft import adjoint, chi2_per_coordinate, degrid

SCALE = 0.01  # arcsec/pixel


def _uv(n: int, seed: int) -> np.ndarray:
    """Samples anywhere within the field's Nyquist range, off cell centres."""
    return np.random.default_rng(seed).uniform(-0.49, 0.49, (n, 2)) / (SCALE * ARCSEC)


def _dense(uv: np.ndarray, N: int) -> np.ndarray:
    """A (n, N²): V_j = Σ_p I_p exp(-2πi κ_j · offset_p / N), the direct sum."""
    k = cell_coordinates(uv, N, SCALE)
    off = np.arange(N) - N // 2
    phase = k[:, 0, None, None] * off[None, :, None] + k[:, 1, None, None] * off[None, None, :]
    return np.exp(-2j * np.pi * phase / N).reshape(len(uv), N * N)


@pytest.mark.parametrize("N", [16, 17])
def test_degridder_is_the_direct_sum_for_point_sources_off_cell_centres(N):
    uv = _uv(400, N)
    image = np.zeros((N, N))
    for (r, c), s in {(N // 2 + 3, N // 2 - 5): 2.0, (0, N - 1): 0.5, (N - 1, 0): 0.25, (0, 0): 1.0}.items():
        image[r, c] = s  # corners included: the mirrored row offsets of an even grid
    direct = _dense(uv, N) @ image.ravel()
    np.testing.assert_allclose(degrid(uv=uv, image=torch.from_numpy(image), pixel_size=SCALE * ARCSEC), direct, atol=1e-6 * np.abs(direct).max())
    assert chi2_per_coordinate(direct, direct, np.ones(len(uv))) == 0.0


@pytest.mark.parametrize("N", [16, 17])
def test_the_dirty_image_is_the_exact_adjoint_of_the_degridder(N):
    rng = np.random.default_rng(N)
    uv, image = _uv(300, N + 1), rng.random((N, N))
    v = rng.normal(size=300) + 1j * rng.normal(size=300)
    lhs = np.real(np.vdot(degrid(uv=uv, image=torch.from_numpy(image), pixel_size=SCALE * ARCSEC), v))
    rhs = float((image * adjoint(uv=uv, vis=v, npix=N, pixel_size=SCALE * ARCSEC).numpy()).sum())
    assert lhs == pytest.approx(rhs, rel=1e-9)


def _problem(N: int, n: int, seed: int):
    rng = np.random.default_rng(seed)
    uv = _uv(n, seed)
    truth = rng.random((N, N))
    A = _dense(uv, N)
    weight = rng.uniform(0.5, 2.0, n) * 1e4
    vis = A @ truth.ravel() + (rng.normal(size=n) + 1j * rng.normal(size=n)) / np.sqrt(weight)
    return uv, vis, weight, A


def test_toeplitz_gram_and_cg_solve_match_dense_matrices():
    N, F = 9, 2.0
    uv, vis, weight, A = _problem(N, 120, 0)
    like = VisibilityLikelihood.build(uv, vis, weight, N, SCALE, F)
    w = weight * F ** 2 / 4
    G = np.real(A.conj().T @ (w[:, None] * A))
    x = torch.from_numpy(np.random.default_rng(1).normal(size=(3, N, N)))
    np.testing.assert_allclose(like.gram(x).numpy().reshape(3, -1), x.numpy().reshape(3, -1) @ G.T,
                               atol=1e-6 * np.abs(G).max())
    yprime = 2 * vis / F - A @ np.ones(N * N)
    b = np.real(A.conj().T @ (w * yprime))
    np.testing.assert_allclose(like.b.numpy().ravel(), b, atol=1e-6 * np.abs(b).max())  # the NUFFT's ε
    rho = 0.05
    P = np.eye(N * N) / rho ** 2 + G
    rhs = torch.from_numpy(np.random.default_rng(2).normal(size=(2, N, N)))
    got = solve(like, rhs, rho, torch.zeros_like(rhs), tol=1e-10, max_iter=500)
    np.testing.assert_allclose(got.numpy().reshape(2, -1), np.linalg.solve(P, rhs.numpy().reshape(2, -1).T).T,
                               rtol=1e-6, atol=1e-8)


def test_the_exact_likelihood_step_has_the_closed_form_posterior_mean_and_covariance():
    """x | z, y under N(x; z, ρ²I) and the visibilities: mean P⁻¹(z/ρ² + b), covariance P⁻¹ (dense reference)."""
    N, F, rho, S = 5, 1.0, 0.3, 4000
    uv, vis, weight, A = _problem(N, 30, 3)
    weight = weight / 1e4  # noise comparable to ρ: both terms of the precision matter
    like = VisibilityLikelihood.build(uv, vis, weight, N, SCALE, F)
    w = weight * F ** 2 / 4
    G = np.real(A.conj().T @ (w[:, None] * A))
    P = np.eye(N * N) / rho ** 2 + G
    z = torch.from_numpy(np.random.default_rng(4).normal(size=(N, N)))
    mean = np.linalg.solve(P, z.numpy().ravel() / rho ** 2 + like.b.numpy().ravel())
    zs = z.expand(1, S, N, N).clone()
    got = likelihood_step(like, zs, rho, [torch.Generator().manual_seed(0)], sample=False)
    np.testing.assert_allclose(got[0, 0].numpy().ravel(), mean, atol=1e-5 * np.abs(mean).max())  # CG to 1e-6
    draws = likelihood_step(like, zs, rho, [torch.Generator().manual_seed(0)])[0].numpy().reshape(S, -1)
    cov = np.linalg.inv(P)
    se = np.sqrt(np.diag(cov) / S)
    assert np.abs(draws.mean(0) - mean).max() < 5 * se.max()
    emp = np.cov(draws.T)
    assert np.abs(np.diag(emp) / np.diag(cov) - 1).max() < 0.12  # 4000 draws: ~2.2 % standard error each
    assert np.abs(emp - cov).max() < 0.1 * np.diag(cov).max()


def test_the_holdout_is_seeded_in_disjoint_blocks_and_the_true_sky_scores_one(tmp_path):
    """A FIRST-like sky observed by the VLA-B layout, written by pyuvdata with noise matching its weights:
    the held-out set is whole (baseline, scan) blocks, the same for the same seed, and the true sky's
    held-out χ² is 1 within its noise."""
    import warnings

    from ddrm.radio.crossval import holdout_mask, scan_index
    from sources.uvfits import read_uvfits
    from tests.test_imaging import SCALE as VLA_SCALE
    from tests.test_imaging import N, _galaxy, _vla_uvdata

    x = _galaxy() * 0.5
    uvd, _ = _vla_uvdata(x, weight=1e4, seed=5)
    path = str(tmp_path / "vla.uvfits")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        uvd.write_uvfits(path)
    vis = read_uvfits(path)
    assert vis.antenna1.shape == (vis.n,) and len(set(zip(vis.antenna1, vis.antenna2))) == uvd.Nbls
    held = holdout_mask(vis.antenna1, vis.antenna2, vis.time_jd, 0.2, seed=3)
    np.testing.assert_array_equal(held, holdout_mask(vis.antenna1, vis.antenna2, vis.time_jd, 0.2, seed=3))
    assert not np.array_equal(held, holdout_mask(vis.antenna1, vis.antenna2, vis.time_jd, 0.2, seed=4))
    assert 0.2 <= held.mean() < 0.25
    blocks = set(zip(vis.antenna1, vis.antenna2, scan_index(vis.time_jd)))
    held_blocks = set(zip(vis.antenna1[held], vis.antenna2[held], scan_index(vis.time_jd)[held]))
    kept_blocks = set(zip(vis.antenna1[~held], vis.antenna2[~held], scan_index(vis.time_jd)[~held]))
    assert held_blocks.isdisjoint(kept_blocks) and held_blocks | kept_blocks == blocks
    uv = vis.uv[held]
    chi2 = chi2_per_coordinate(degrid(uv=uv, image=x, pixel_size=VLA_SCALE * ARCSEC), vis.vis[held], vis.weight[held])
    n = int(held.sum())
    assert abs(chi2 - 1) < 5 * np.sqrt(1 / n), (chi2, n)  # χ²/(2n) has std √(1/n)
    assert x.shape == (N, N)


def test_scans_split_at_gaps():
    from ddrm.radio.crossval import scan_index

    t = np.concatenate([np.arange(10) * 10.0, 1000 + np.arange(5) * 10.0, 5000 + np.arange(3) * 10.0]) / 86400
    np.testing.assert_array_equal(scan_index(t + 2460000.5), [0] * 10 + [1] * 5 + [2] * 3)


def test_radler_multiscale_clean_of_an_extended_source_beats_hogbom():
    """Two Gaussian blobs (σ 4 and 1.5 px) seen by a sparse random coverage, visibilities by a direct
    NUFFT with noise: radler's multiscale components, convolved with the CLEAN beam, are closer to the truth
    convolved with it than Hogbom's; both keep the total flux."""
    import ddrm.radio.multiscale as multiscale
    from ddrm.radio.baselines import hogbom_clean
    from ddrm.radio.dirty import nufft_dirty, nufft_psf

    if not multiscale.available():
        pytest.skip("radler is not installed (pip install radler)")
    N, rng = 64, np.random.default_rng(0)
    uv = rng.normal(0, 0.12, (3000, 2)) / (SCALE * ARCSEC)
    uv = uv[(np.abs(cell_coordinates(uv, N, SCALE)) < 0.45 * N).all(1)]
    y, x = np.mgrid[:N, :N] - N // 2
    truth = 0.02 * np.exp(-((x - 3) ** 2 + (y + 2) ** 2) / 32.0) + 0.05 * np.exp(-((x + 8) ** 2 + (y - 6) ** 2) / 4.5)
    w = np.full(len(uv), 1e6)
    vis = degrid(uv=uv, image=torch.from_numpy(truth), pixel_size=SCALE * ARCSEC) + (rng.normal(size=len(uv)) + 1j * rng.normal(size=len(uv))) / 1e3
    hogbom = hogbom_clean(nufft_dirty(uv, vis, w, N, SCALE)[None], nufft_psf(uv, w, N, SCALE), gain=0.1,
                          max_iter=5000, threshold=1e-4)
    ms = multiscale.multiscale_clean(uv, vis, w, N, SCALE, hogbom.beam.fwhm_pixels[0], threshold_jy=1e-4)
    kernel = torch.fft.rfft2(hogbom.beam.image(N))

    def at_beam(img) -> np.ndarray:
        return torch.fft.irfft2(torch.fft.rfft2(torch.as_tensor(img, dtype=torch.float64)) * kernel, s=(N, N)).numpy()

    ref = at_beam(truth)
    err = {name: np.linalg.norm(at_beam(m) - ref) / np.linalg.norm(ref) for name, m in
           (("hogbom", hogbom.model[0]), ("multiscale", ms))}
    assert err["multiscale"] < err["hogbom"], err
    assert float(ms.sum()) == pytest.approx(truth.sum(), rel=0.05)


def test_the_operator_step_of_a_cell_mask_has_the_closed_form_posterior_mean_and_covariance():
    """x | z, y for y = H x + σ n with H an SVD operator (a cell mask): dense P = I/ρ² + HᵀH/σ²."""
    from ddrm.inverse.operators.fourier import FourierSamplingOperator
    from ddrm.radio.exact_gibbs import operator_step

    N, rho, sigma, S = 6, 0.3, 0.2, 4000
    rng = np.random.default_rng(5)
    c = (rng.random((N, N)) < 0.3).astype(np.float64) * rng.integers(1, 4, (N, N))
    counts = torch.from_numpy(c + np.roll(np.flip(c, (0, 1)), 1, (0, 1)))  # closed under k -> -k
    op = FourierSamplingOperator(counts, weighting="natural")
    H = op.H(torch.eye(N * N, dtype=torch.float64).reshape(-1, N, N)).numpy().T  # (M, N²)
    y = torch.from_numpy(H @ rng.normal(size=N * N) + sigma * rng.normal(size=H.shape[0]))[None]
    P = np.eye(N * N) / rho ** 2 + H.T @ H / sigma ** 2
    z = torch.from_numpy(rng.normal(size=(N, N)))
    mean = np.linalg.solve(P, z.numpy().ravel() / rho ** 2 + H.T @ y[0].numpy() / sigma ** 2)
    gens = [torch.Generator().manual_seed(0)]
    zs = z.expand(1, S, N, N).clone()
    got = operator_step(op, y, sigma, gens)(zs, rho, False)
    np.testing.assert_allclose(got[0, 0].numpy().ravel(), mean, atol=1e-10)
    draws = operator_step(op, y, sigma, gens)(zs, rho, True)[0].numpy().reshape(S, -1)
    cov = np.linalg.inv(P)
    assert np.abs(draws.mean(0) - mean).max() < 5 * np.sqrt(np.diag(cov) / S).max()
    emp = np.cov(draws.T)
    assert np.abs(np.diag(emp) / np.diag(cov) - 1).max() < 0.12
    assert np.abs(emp - cov).max() < 0.1 * np.diag(cov).max()
    noiseless = operator_step(op, y, 0.0, gens)(zs[:, :1], rho, True)[0, 0].numpy().ravel()
    np.testing.assert_allclose(H @ noiseless, y[0].numpy(), atol=1e-10)  # σ = 0: the data exactly


def test_the_discrepancy_step_takes_the_smallest_rho_whose_mean_fits_the_data():
    """The last sweep's mean at ρ_f: ρ_min when the mean there already has χ² ≤ target (then exactly the
    plain mean), otherwise a ρ_f whose mean fits while the mean one bisection step below it does not. Where
    χ²(ρ_max) > 1 (errors beyond the noise) the target is scaled by it, so a mean within that floor's reach
    stays at ρ_min. The χ² of the mean falls monotonically as ρ grows."""
    from ddrm.radio.exact_gibbs import ExactRefineConfig, discrepancy_mean

    N, F, lo, hi = 8, 1.0, 0.01, 0.3
    step = (hi / lo) ** (2.0 ** -8)  # the bisection's resolution in ρ
    uv, vis, weight, _ = _problem(N, 60, 5)
    z = torch.zeros(1, 2, N, N, dtype=torch.float64)  # a prior image far from the data

    def mean_chi2(like, rho):
        return like.chi2(likelihood_step(like, z, rho, (), sample=False)[0].mean(0))

    like = VisibilityLikelihood.build(uv, vis, weight / 1e4, N, SCALE, F)
    chi2 = [mean_chi2(like, r) for r in (lo, 0.03, 0.1, hi)]
    assert all(a > b for a, b in zip(chi2, chi2[1:])) and chi2[-1] < 1, chi2
    x, rho = discrepancy_mean(like, z, lo, hi, chi2[0] * 1.01)
    assert rho == lo and torch.equal(x, likelihood_step(like, z, lo, (), sample=False))
    x, rho = discrepancy_mean(like, z, lo, hi, chi2[1])  # reached at ρ = 0.03 exactly
    assert like.chi2(x[0].mean(0)) <= chi2[1] and mean_chi2(like, rho / step) > chi2[1]
    assert 0.03 <= rho * (1 + 1e-12) and rho < 0.03 * step * (1 + 1e-12)

    like = VisibilityLikelihood.build(uv, vis, weight * 1e2, N, SCALE, F)  # a floor far above the noise
    floor, first = mean_chi2(like, hi), mean_chi2(like, lo)
    assert 1.1 < floor < first < 1.1 * floor, (floor, first)
    x, rho = discrepancy_mean(like, z, lo, hi, 1.1)
    assert rho == lo and torch.equal(x, likelihood_step(like, z, lo, (), sample=False))
    with pytest.raises(ValueError, match="chi2_target"):
        ExactRefineConfig(chi2_target=0.0)

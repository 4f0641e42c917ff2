"""Layouts, Earth-rotation coverage, gridding, simulation, paper masks (docs/design.md §2-3)."""

import math
import warnings

import numpy as np
import pytest
import torch

from ddrm.inverse.operators import conjugate_flip
from ddrm.radio import (add_noise, exact_measurements, exact_visibilities, fit_pixel_scale, grid_counts,
                        grid_visibilities, known_layouts, load_layout, observation_preset, observe_array, paper_mask,
                        paper_operator, parse_layout_csv, uv_coverage)
from ddrm.radio.coverage import project_baselines

F64 = torch.float64


def test_all_layouts_load_with_their_station_counts():
    expected = {"vla_a": 27, "vla_d": 27, "alma_c1": 43, "alma_c10": 43, "eht2017": 8, "eht2022": 11}
    for name, n in expected.items():
        lay = load_layout(name)
        assert lay.n_stations == n and lay.xyz.shape == (n, 3) and np.isfinite(lay.xyz).all()
    assert {"vla_a", "vla_b", "vla_c", "vla_d", "eht2017", "eht2022"} <= set(known_layouts())
    assert load_layout("vla_a").longest_baseline_m() == pytest.approx(36.6e3, rel=0.02)
    assert np.isfinite(load_layout("eht2017").sefd).all() and np.isnan(load_layout("vla_b").sefd).all()


def test_unknown_layout_and_preset_list_the_known_ones():
    with pytest.raises(ValueError, match="known: .*vla_b"):
        load_layout("meerkat")
    with pytest.raises(ValueError, match="known: alma, eht, vla"):
        observation_preset("lofar")


def test_user_csv_layout_and_bad_csv():
    text = "name,x_m,y_m,z_m,diam_m\nA,0,0,6378137\nB,0,1000,6378137\n".replace("6378137\n", "6378137,25\n")
    lay = parse_layout_csv(text, "mine")
    assert lay.stations == ("A", "B") and lay.n_baselines == 1
    with pytest.raises(ValueError, match="lacks columns"):
        parse_layout_csv("name,x_m\nA,1\n", "bad")
    with pytest.raises(ValueError, match="bad number"):
        parse_layout_csv("name,x_m,y_m,z_m,diam_m\nA,x,0,0,1\nB,0,0,0,1\n", "bad")


def test_counts_without_and_with_elevation_flags():
    obs = observation_preset("vla", min_elevation_deg=None, ha_start_h=-0.2, ha_end_h=0.2)
    cov = uv_coverage(load_layout("vla_b"), obs)
    assert cov.n_flagged == 0 and len(cov.uvw) == 351 * cov.n_times * 2
    eht = uv_coverage(load_layout("eht2017"), observation_preset("eht"))
    assert eht.n_flagged > 0
    assert len(eht.uvw) == 2 * (28 * eht.n_times - eht.n_flagged)
    assert np.allclose(eht.uvw[: len(eht.uvw) // 2], -eht.uvw[len(eht.uvw) // 2:])


def test_east_west_baseline_at_pole_traces_a_circle():
    b = np.array([[0.0, 1000.0, 0.0]])  # purely east-west at the Greenwich meridian
    H = np.linspace(0, 2 * np.pi, 50)
    uvw = project_baselines(b, H, math.pi / 2)[:, 0]
    assert np.allclose(np.hypot(uvw[:, 0], uvw[:, 1]), 1000.0, atol=1e-9)
    assert np.allclose(uvw[:, 2], 0.0, atol=1e-9)


def test_uvw_length_equals_baseline_over_wavelength():
    lay, obs = load_layout("eht2017"), observation_preset("eht")
    cov = uv_coverage(lay, obs)
    half = len(cov.uvw) // 2
    b = lay.xyz[cov.baselines[:, 1]] - lay.xyz[cov.baselines[:, 0]]
    assert np.allclose(np.linalg.norm(cov.uvw[:half], axis=1), np.linalg.norm(b, axis=1) / cov.wavelength_m, rtol=1e-12)


@pytest.mark.parametrize("N", [64, 65])
def test_gridding_is_closed_counts_on_grid_and_fit_mode(N):
    ao = observe_array("vla", N)
    counts = ao.gridded.counts
    assert torch.equal(counts, conjugate_flip(counts))
    assert float(counts.sum()) == ao.gridded.n_on_grid and ao.gridded.n_off_grid == 0
    k = ao.cell_coordinates()
    assert float(np.hypot(k[:, 0], k[:, 1]).max()) == pytest.approx(0.9 * N / 2, rel=1e-9)
    coarse = grid_counts(ao.coverage.uvw, N, 2 * ao.pixel_scale_arcsec)  # longest baselines fall off
    assert coarse.n_off_grid > 0 and coarse.n_on_grid + coarse.n_off_grid == len(ao.coverage.uvw)
    assert float(coarse.counts.sum()) == coarse.n_on_grid


def test_gridded_operator_equals_direct_dft_at_cell_centres():
    N = 32
    ao = observe_array("alma", N)
    x = torch.rand(2, N, N, generator=torch.Generator().manual_seed(0), dtype=F64)
    k = np.rint(ao.cell_coordinates())  # every sample moved to its cell centre
    assert torch.allclose(exact_measurements(x, ao.op, k), ao.op.H(x), atol=1e-12)
    vis = exact_visibilities(x, k)
    half = len(k) // 2  # conjugate samples give conjugate visibilities
    assert torch.allclose(vis[:, half:], vis[:, :half].conj(), atol=1e-12)
    grid = grid_visibilities(vis, k, N)
    assert torch.allclose(grid[:, ao.op.mask], torch.fft.fft2(x, norm="ortho")[:, ao.op.mask], atol=1e-12)


def test_gridding_error_is_measurable_and_small_for_a_smooth_image():
    N = 32
    ao = observe_array("vla", N)
    yy, xx = torch.meshgrid(torch.arange(N, dtype=F64), torch.arange(N, dtype=F64), indexing="ij")
    x = torch.exp(-((xx - 16) ** 2 + (yy - 16) ** 2) / 8.0)[None]
    y_grid, y_exact = ao.op.H(x), exact_measurements(x, ao.op, ao.cell_coordinates())
    rel = float((y_exact - y_grid).norm() / y_grid.norm())
    print(f"VLA N={N}: relative gridding error for a centred Gaussian {rel:.3%}")
    assert 0 < rel < 0.2


def test_noise_matches_sigma_and_target_snr():
    g = torch.Generator().manual_seed(0)
    y_clean = torch.randn(4, 20000, generator=g, dtype=F64) * torch.tensor([[1.0], [2.0], [0.5], [3.0]], dtype=F64)
    y, sig = add_noise(y_clean, g, sigma_y=0.3)
    assert torch.allclose((y - y_clean).std(dim=1), sig, rtol=0.02) and float(sig[0]) == 0.3
    y, sig = add_noise(y_clean, g, snr_db=10.0)
    snr = 10 * torch.log10(y_clean.pow(2).mean(1) / (y - y_clean).pow(2).mean(1))
    assert torch.allclose(snr, torch.full((4,), 10.0, dtype=F64), atol=0.2)  # sampling std ≈ 0.043 dB
    with pytest.raises(ValueError, match="exactly one"):
        add_noise(y_clean, g)
    with pytest.raises(ValueError, match="sigma_y"):
        add_noise(y_clean, g, sigma_y=-1.0)


def test_paper_masks_are_closed_with_a_warning():
    for name, cells in (("vla", 2852), ("eht", 1268), ("alma", 3971)):
        assert int(paper_mask(name).sum()) == cells
        with pytest.warns(UserWarning, match="not closed"):
            op = paper_operator(name)
        assert torch.equal(op.mask, conjugate_flip(op.mask)) and torch.all(op.singulars == 1)
        assert bool(op.mask[torch.fft.ifftshift(paper_mask(name))].all())
    with pytest.raises(ValueError, match="known"):
        paper_mask("lofar")


def test_user_npy_mask(tmp_path):
    from sources.masks import load_mask_operator
    m = np.zeros((16, 16), dtype=bool)
    m[8, 8] = m[8, 9] = m[8, 7] = True  # centred, closed
    np.save(tmp_path / "m.npy", m)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        op = load_mask_operator(tmp_path / "m.npy")
    assert op.num_measured == 3
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    with pytest.raises(ValueError, match="bad.npy"):
        load_mask_operator(tmp_path / "bad.npy")
    np.save(tmp_path / "cube.npy", np.ones((2, 4, 4)))
    with pytest.raises(ValueError, match="cube.npy.*2-D"):
        load_mask_operator(tmp_path / "cube.npy")


def test_coverage_sanity_per_preset_at_150():
    paper = {"vla": 0.127, "eht": 0.056, "alma": 0.176}
    for name in ("vla", "eht", "alma"):
        ao = observe_array(name, 150)
        f = ao.gridded.fraction_sampled
        print(f"{name}: {f:.1%} of cells (paper mask {paper[name]:.1%}), longest projected baseline "
              f"{ao.coverage.max_uv / 1e3:.4g} kλ, {ao.pixel_scale_arcsec:.4g}\"/px, "
              f"{ao.gridded.n_on_grid} samples on grid")
        assert 0.01 < f < 0.4 and ao.gridded.n_off_grid == 0


def test_bad_observation_config():
    with pytest.raises(ValueError, match="dec_deg"):
        observation_preset("vla", dec_deg=100.0)
    with pytest.raises(ValueError, match="ha_start_h"):
        observation_preset("vla", ha_start_h=1.0, ha_end_h=0.0)
    with pytest.raises(ValueError, match="no non-zero baseline"):
        fit_pixel_scale(np.zeros((2, 3)), 64)
    with pytest.raises(ValueError, match="fraction"):
        fit_pixel_scale(np.ones((2, 3)), 64, fraction=1.5)
    with pytest.raises(ValueError, match="no unflagged"):
        observe_array(observation_preset("eht", dec_deg=-89.0, min_elevation_deg=80.0), 32)


def test_weighted_gridding_of_cell_centred_samples_is_the_unitary_dft():
    from ddrm.radio.gridding import ARCSEC, grid_weighted

    N, scale = 16, 2.0
    g = torch.Generator().manual_seed(0)
    x = torch.rand(N, N, generator=g, dtype=F64)
    k = torch.randint(-7, 8, (40, 2), generator=g).numpy().astype(np.float64)  # cell-centred κ = (k_row, k_col)
    uvw = np.stack([k[:, 1], -k[:, 0]], axis=1) / (N * scale * ARCSEC)
    vis = N * exact_visibilities(x[None], k)[0].numpy()  # Jy: V = Σ I exp(+2πi(ul + vm))
    w = np.random.default_rng(1).uniform(0.5, 2.0, len(k))
    grid = grid_weighted(uvw, vis, w, N, scale)
    measured = grid.data_weight > 0
    X = torch.fft.fft2(x, norm="ortho")
    torch.testing.assert_close(grid.X[measured], X[measured], rtol=1e-9, atol=1e-12)
    assert float(grid.data_weight.sum()) == pytest.approx(2 * w.sum()) and grid.n_on == 40 and grid.n_off == 0
    torch.testing.assert_close(grid.data_weight, torch.roll(torch.flip(grid.data_weight, (0, 1)), (1, 1), (0, 1)))


def test_briggs_weighting_spans_uniform_and_natural():
    from ddrm.radio.gridding import imaging_weights

    W = torch.tensor([[0.0, 1.0], [4.0, 16.0]], dtype=F64)
    natural, uniform = imaging_weights(W, "natural"), imaging_weights(W, "uniform")
    robust_hi, robust_lo = imaging_weights(W, "briggs", 5.0), imaging_weights(W, "briggs", -5.0)
    torch.testing.assert_close(robust_hi / robust_hi.max(), natural / natural.max(), rtol=1e-4, atol=0)
    torch.testing.assert_close(robust_lo / robust_lo.max(), uniform, rtol=1e-3, atol=0)
    with pytest.raises(ValueError, match="unknown weighting"):
        imaging_weights(W, "tapered")


def test_gridded_observation_matches_the_operator_and_its_noise_level():
    from ddrm.radio.grid_problem import observation_from_grid, to_model_space
    from ddrm.radio.gridding import ARCSEC, grid_weighted

    N, scale, n = 16, 2.0, 400
    rng = np.random.default_rng(3)
    x = torch.from_numpy(rng.random((N, N)))
    k = rng.integers(-5, 6, (n, 2)).astype(np.float64)  # several samples per cell
    uvw = np.stack([k[:, 1], -k[:, 0]], axis=1) / (N * scale * ARCSEC)
    clean_vis = N * exact_visibilities(x[None], k)[0].numpy()
    w = rng.uniform(0.5, 2.0, n)
    obs = observation_from_grid(grid_weighted(uvw, clean_vis, w, N, scale))
    torch.testing.assert_close(obs.y_jy, obs.op.H(x), rtol=1e-9, atol=1e-12)  # noiseless: exactly H x
    torch.testing.assert_close(to_model_space(obs.y_jy, obs.op, 2.0), obs.op.H(2 * x / 2.0 - 1), rtol=1e-9, atol=1e-12)
    noisy = []
    for _ in range(200):
        z = (rng.standard_normal(n) + 1j * rng.standard_normal(n)) / np.sqrt(w)
        o = observation_from_grid(grid_weighted(uvw, clean_vis + z, w, N, scale))
        noisy.append((o.y_jy - obs.y_jy).numpy())
        chi2 = o.grid.scatter_chi2
    err = np.array(noisy)
    assert err.std() == pytest.approx(obs.sigma_weights, rel=0.05)  # natural weighting: one σ for all
    assert chi2 == pytest.approx(1.0, abs=0.2) and math.isnan(obs.sigma_scatter) is False


def test_dirty_image_matches_ducc0_exactly_on_cell_centred_samples():
    """An independent imager (ducc0's wgridder, an exact non-uniform FFT) agrees with our gridding's
    dirty image when samples sit at cell centres; its image is our (row, col) transposed and flipped,
    with its centre one pixel over (ducc0 uses V = Σ I exp(-2πi(ul + vm)))."""
    ducc0 = pytest.importorskip("ducc0", reason="ducc0 (the test extra) is not installed")
    from ddrm.radio.baselines import dirty_image
    from ddrm.radio.grid_problem import observation_from_grid
    from ddrm.radio.gridding import ARCSEC, grid_weighted

    N, scale = 64, 1.0
    rng = np.random.default_rng(2)
    k = rng.integers(-20, 21, (50, 2)).astype(np.float64)
    uv = np.stack([k[:, 1], -k[:, 0]], axis=1) / (N * scale * ARCSEC)
    vis = rng.standard_normal(50) + 1j * rng.standard_normal(50)
    w = rng.uniform(0.5, 2.0, 50)
    obs = observation_from_grid(grid_weighted(uv, vis, w, N, scale))
    ours = dirty_image(obs.y_jy, obs.op).numpy()
    theirs = ducc0.wgridder.experimental.vis2dirty(
        uvw=np.concatenate([uv, np.zeros((50, 1))], axis=1), freq=np.array([299792458.0]), vis=vis[:, None],
        wgt=w[:, None], npix_x=N, npix_y=N, pixsize_x=scale * ARCSEC, pixsize_y=scale * ARCSEC, epsilon=1e-10)
    theirs = np.roll(theirs.T[::-1], 1, axis=0)
    assert np.corrcoef(ours.ravel(), theirs.ravel())[0, 1] > 0.999999

import math

import pytest
import torch

from ddrm.diffusion.galaxies import FWHM_PER_SIGMA, MORPHOLOGIES, GalaxyConfig, synth_galaxies
from ddrm.diffusion.images import centre_crop_or_pad, fit_to_size, image_problem, normalise, resample


def draw(n=64, N=64, seed=0, **kw):
    return synth_galaxies(n, N, GalaxyConfig(**kw), torch.Generator().manual_seed(seed))


def only(morphology: str) -> tuple:
    return tuple(float(m == morphology) for m in MORPHOLOGIES)


def test_deterministic_per_seed_and_independent_of_render_chunk():
    a, b = draw(seed=3), draw(seed=3)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    c = synth_galaxies(64, 64, GalaxyConfig(), torch.Generator().manual_seed(3), render_chunk=5)
    torch.testing.assert_close(c.images, a.images, rtol=0, atol=1e-6)
    assert not torch.equal(draw(seed=4).images, a.images)


@pytest.mark.parametrize("N", [16, 64, 150])
def test_images_are_float32_non_negative_with_unit_peak(N):
    gal = draw(n=24, N=N, noise_std=0.02)
    assert gal.images.shape == (24, N, N) and gal.images.dtype == torch.float32
    assert gal.images.min() >= 0
    torch.testing.assert_close(gal.images.amax(dim=(1, 2)), torch.ones(24))


def test_every_morphology_is_drawn_and_weights_select_them():
    assert set(draw(n=200).labels.tolist()) == set(range(len(MORPHOLOGIES)))
    for i, m in enumerate(MORPHOLOGIES):
        assert (draw(n=16, weights=only(m)).labels == i).all()


def _peak_distance(gal) -> torch.Tensor:
    N = gal.images.shape[-1]
    flat = gal.images.flatten(1).argmax(1)
    peak = torch.stack([flat % N, flat // N], dim=1).float()  # (col, row)
    return (peak - gal.centre).norm(dim=1)


def test_fr1_is_core_brightened_and_fr2_edge_brightened():
    beam = GalaxyConfig().beam_fwhm_px
    fr1 = draw(n=64, weights=only("fr1"))
    assert (_peak_distance(fr1) <= beam).all()
    fr2 = draw(n=64, weights=only("fr2"))
    assert (_peak_distance(fr2) >= 0.5 * fr2.extent).all()


def _second_moments(images: torch.Tensor) -> torch.Tensor:
    N = images.shape[-1]
    grid = torch.arange(N, dtype=torch.float64)
    w = images.double() / images.double().sum(dim=(1, 2), keepdim=True)
    mx, my = (w.sum(1) * grid).sum(1), (w.sum(2) * grid).sum(1)
    vx = (w.sum(1) * (grid - mx[:, None]) ** 2).sum(1)
    vy = (w.sum(2) * (grid - my[:, None]) ** 2).sum(1)
    return torch.minimum(vx, vy)


@pytest.mark.parametrize("fwhm", [2.8, 6.0])
def test_sizes_are_beam_limited(fwhm):
    """A Gaussian convolved with the beam has variance ≥ σ_b² along every axis; a bare core equals it."""
    sigma_b2 = (fwhm / FWHM_PER_SIGMA) ** 2
    gal = draw(n=64, N=64, beam_fwhm_px=fwhm)
    assert (_second_moments(gal.images) >= 0.98 * sigma_b2).all()
    cores = draw(n=32, N=64, beam_fwhm_px=fwhm, weights=only("compact"))
    assert _second_moments(cores.images).min() < 1.2 * sigma_b2 + 1.2 ** 2  # intrinsic size ≤ 1.2 px


def test_noise_is_sigma_clipped():
    gal = draw(n=16, noise_std=0.05, clip_sigma=3.0)
    x = gal.images
    # clipped at 3σ = 0.15 before renormalising by a peak of at most 1 + 6σ
    assert x[x > 0].min() >= 0.15 / 1.3
    assert (x == 0).float().mean() > 0.5


def test_bad_generator_settings_raise():
    for kw in ({"beam_fwhm_px": 0}, {"weights": (0, 0, 0, 0)}, {"weights": (1, 1)}, {"size_min": 0.6},
               {"noise_std": -1}):
        with pytest.raises(ValueError):
            GalaxyConfig(**kw)
    with pytest.raises(ValueError):
        synth_galaxies(0, 64, GalaxyConfig(), torch.Generator())


def test_crop_pad_round_trip_and_centre_convention():
    x = torch.arange(7 * 9, dtype=torch.float32).reshape(7, 9)
    padded = centre_crop_or_pad(x, 16)
    assert padded[8, 8] == x[3, 4]  # pixel (H//2, W//2) lands on (N//2, N//2)
    assert torch.equal(centre_crop_or_pad(padded, 9)[1:8], x)
    assert padded.sum() == x.sum()


def test_resample_preserves_a_constant_and_squares_first():
    x = torch.full((30, 40), 2.0)
    out = resample(x, 12)
    assert out.shape == (12, 12)
    torch.testing.assert_close(out, torch.full((12, 12), 2.0))
    with pytest.raises(ValueError, match="unknown fit mode"):
        fit_to_size(x, 12, "stretch")


def test_normalise_and_image_problems():
    x = torch.tensor([[-1.0, 0.5], [2.0, 1.0]])
    torch.testing.assert_close(normalise(x), torch.tensor([[0.0, 0.25], [1.0, 0.5]]))
    torch.testing.assert_close(normalise(x, 4.0), torch.tensor([[0.0, 0.125], [0.5, 0.25]]))
    assert normalise(x, 1.0).max() == 1  # clipped to [0, 1]
    assert image_problem(torch.ones(1, 1, 4, 4)) is None
    assert "2-D" in image_problem(torch.ones(2, 4, 4))
    assert "NaN" in image_problem(torch.tensor([[1.0, math.nan], [0.0, 1.0]]))
    assert "all zero" in image_problem(torch.zeros(4, 4))
    with pytest.raises(ValueError):
        normalise(torch.zeros(3, 3))

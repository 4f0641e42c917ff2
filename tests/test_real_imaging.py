"""Imaging the shared real observations: the dirty image from the visibilities agrees with an independent
imager (ducc0's wgridder), and each file images end to end with a WCS that round-trips and a posterior
mean whose total flux agrees with CLEAN's."""

import json

import numpy as np
import pytest

from configs.image import ImageConfig
from ddrm.radio.dirty import nufft_dirty, nufft_psf
from ddrm.radio.gridding import (ARCSEC, cell_coordinates, fit_pixel_scale, grid_weighted, visibility_imaging_weights,
                                 zero_spacing_amplitudes)
from sources.uvfits import read_uvfits
from tests.test_uvfits import FILES, VIS, needs_files


def _direct_dirty(uv, vis, w, N, scale):
    """The dirty image by its definition (a direct sum over samples and pixels)."""
    k = cell_coordinates(uv, N, scale)
    off = np.arange(N) - N // 2
    phase = np.exp(2j * np.pi * (k[:, 0, None, None] * off[None, :, None] + k[:, 1, None, None] * off[None, None, :]) / N)
    return (w[:, None, None] * (vis[:, None, None] * phase).real).sum(0) / w.sum()


@pytest.mark.parametrize("N", [32, 33])
def test_nufft_dirty_image_is_the_direct_sum_and_the_psf_peaks_at_one(N):
    rng = np.random.default_rng(0)
    uv, w = rng.normal(0, 3e3, (400, 2)), rng.uniform(0.5, 2.0, 400)
    vis = rng.standard_normal(400) + 1j * rng.standard_normal(400)
    ours = nufft_dirty(uv, vis, w, N, 2.0).numpy()
    direct = _direct_dirty(uv, vis, w, N, 2.0)
    assert np.abs(ours - direct).max() < 1e-5 * np.abs(direct).max()
    psf = nufft_psf(uv, w, N, 2.0)
    assert psf.shape == (2 * N, 2 * N) and float(psf[0, 0]) == pytest.approx(1.0, abs=1e-6)
    assert float(psf.max()) == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="positive weight"):
        nufft_dirty(uv, vis, np.zeros(400), N, 2.0)


def _ducc0_dirty(ducc0, uv, vis, w, N, scale):
    """ducc0's dirty image mapped to our pixel convention (V = Σ I exp(-2πi(ul + vm)) there: transposed,
    flipped, one pixel over), normalised to Jy/beam. Its first row and column hold offset +N/2, ours -N/2."""
    img = ducc0.wgridder.experimental.vis2dirty(
        uvw=np.concatenate([uv, np.zeros((len(uv), 1))], axis=1), freq=np.array([299792458.0]), vis=vis[:, None],
        wgt=w[:, None], npix_x=N, npix_y=N, pixsize_x=scale * ARCSEC, pixsize_y=scale * ARCSEC, epsilon=1e-9)
    return np.roll(img.T[::-1], 1, axis=0) / w.sum()


@needs_files
@pytest.mark.parametrize("weighting", ["natural", "briggs"])
@pytest.mark.parametrize("name", sorted(FILES))
def test_dirty_image_of_each_real_file_matches_ducc0(name, weighting):
    ducc0 = pytest.importorskip("ducc0", reason="ducc0 (the test extra) is not installed")
    vis = read_uvfits(str(VIS / name))
    uv, N = vis.uv, 64
    scale = fit_pixel_scale(uv, N)
    w = visibility_imaging_weights(uv, vis.weight, grid_weighted(uv, vis.vis, vis.weight, N, scale, weighting))
    values = zero_spacing_amplitudes(uv, vis.vis, N, scale)
    ours = nufft_dirty(uv, values, w, N, scale).numpy()[1:, 1:]
    theirs = _ducc0_dirty(ducc0, uv, values, w, N, scale)[1:, 1:]
    assert np.corrcoef(ours.ravel(), theirs.ravel())[0, 1] >= 0.99
    np.testing.assert_allclose(ours, theirs, atol=1e-5 * np.abs(theirs).max())  # in fact equal, to ducc0's ε


@needs_files
@pytest.mark.parametrize("name", sorted(FILES))
def test_each_real_file_images_end_to_end_with_its_wcs_and_total_flux(name, tmp_path):
    from astropy.io import fits
    from astropy.wcs import WCS

    from imager.file import image_file

    n_vis, ra, dec = FILES[name]
    summary = image_file(str(VIS / name), ImageConfig.of(N=64, K=10, samples=2, field_fractions=(1.0,)),  # one scale:
                         root=str(tmp_path)).product  # the ladder has its own end-to-end test (test_image_scale)
    assert summary.observation.n_vis + summary.observation.n_flagged == n_vis and summary.field.n_on_grid > 0
    # item 3: the DC cell (or CLEAN's total where no baseline measured it) fixes the total flux
    assert summary.posterior.total_flux_jy == pytest.approx(summary.posterior.total_flux_clean_jy, rel=0.10)
    assert summary.posterior.total_flux_clean_jy > 0 and summary.fit.chi2_per_coordinate > 0
    with fits.open(summary.images.fits) as hdul:
        assert [h.name for h in hdul][1:] == ["STD", "DIRTY", "CLEAN", "RESIDUAL", "SAMPLES"]  # the mean is the primary
        mean_hdu, clean_hdu = hdul[0], hdul["CLEAN"]
        assert mean_hdu.header["BUNIT"].upper() == "JY/PIXEL" and clean_hdu.header["BUNIT"].upper() == "JY/BEAM"
        assert clean_hdu.header["BMAJ"] >= clean_hdu.header["BMIN"] > 0
        wcs = WCS(mean_hdu.header)
        assert wcs.wcs.ctype[0] == "RA---SIN" and wcs.wcs.ctype[1] == "DEC--SIN"
        centre = wcs.celestial.pixel_to_world(32, 32)  # pixel (N//2, N//2), 0-based
        assert (centre.ra.deg, centre.dec.deg) == pytest.approx((ra, dec), abs=1e-4)
        assert abs(wcs.celestial.wcs.cdelt[1]) * 3600 == pytest.approx(summary.field.pixel_scale_arcsec, rel=1e-9)
        assert mean_hdu.header["DATE-OBS"] and float(np.nansum(mean_hdu.data)) == pytest.approx(
            summary.posterior.total_flux_jy, rel=1e-4)
    [written] = tmp_path.glob(f"images/image-*/{name}-*/summary.json")  # the run's folder, the file's own folder
    assert json.loads(written.read_text())["observation"]["file"].endswith(name)

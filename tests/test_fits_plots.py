import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from ddrm.radio import observe_array
from reporting.plots import plot_dirty_beam, plot_uv_coverage
from stores.fits_io import read_fits, write_fits


def test_fits_round_trip_keeps_data_and_wcs(tmp_path):
    img = np.random.default_rng(0).random((33, 33)).astype(np.float32)
    p = write_fits(tmp_path / "r.fits", img, ra_deg=150.0, dec_deg=30.0, pixel_scale_arcsec=1.8, bunit="Jy/pixel",
                   freq_hz=1.4e9, extra={"kind": "posterior_mean"})
    data, header = read_fits(p)
    assert np.array_equal(data, img)
    w = WCS(header)
    assert list(w.wcs.ctype) == ["RA---SIN", "DEC--SIN"] and header["BUNIT"] == "Jy/pixel"
    assert header["CDELT1"] == pytest.approx(-0.0005) and header["CDELT2"] == pytest.approx(0.0005)
    ra, dec = w.wcs_pix2world([[16, 16]], 0)[0]  # the centre pixel (N//2) is the pointing
    assert (ra, dec) == pytest.approx((150.0, 30.0))
    ra_e, _ = w.wcs_pix2world([[0, 16]], 0)[0]
    assert ra_e > 150.0  # column 0 is East
    assert header["KIND"] == "posterior_mean"


def test_corrupt_and_nan_fits_name_the_file(tmp_path):
    bad = tmp_path / "corrupt.fits"
    bad.write_bytes(b"SIMPLE  = T" + b"\x00" * 100)
    with pytest.raises(ValueError, match="corrupt.fits"):
        read_fits(bad)
    nan = tmp_path / "nan.fits"
    fits.PrimaryHDU(np.full((8, 8), np.nan, dtype=np.float32)).writeto(nan)
    with pytest.raises(ValueError, match="nan.fits.*NaN"):
        read_fits(nan)
    cube = tmp_path / "cube.fits"
    fits.PrimaryHDU(np.zeros((2, 8, 8), dtype=np.float32)).writeto(cube)
    with pytest.raises(ValueError, match="cube.fits.*2-D"):
        read_fits(cube)


def test_pictures_are_written(tmp_path):
    ao = observe_array("eht", 64)
    for p in (plot_uv_coverage(ao, tmp_path / "uv.png"), plot_dirty_beam(ao.op, tmp_path / "beam.png")):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000


def test_the_imaging_panel_is_two_rows_of_three_at_readme_width_with_clean_and_mean_on_one_scale():
    import io

    import matplotlib.image as mpimg

    from reporting.imaging_panel import Panel, _norm, _unit, imaging_panel_png

    N = 64
    y, x = np.mgrid[:N, :N] - N // 2
    source = np.exp(-(x ** 2 + y ** 2) / 20.0) + 1e-3 * np.exp(-((x - 10) ** 2 + y ** 2) / 8.0)  # 10³ of range
    panels = [Panel("dirty", source, "Jy/beam"), Panel("CLEAN", source, "Jy/beam", group="sky"),
              Panel("posterior mean", 0.5 * source, "Jy/beam", group="sky"), Panel("posterior std", source, "Jy/pixel"),
              Panel("residual", source - source.mean(), "Jy/beam", "residual"), Panel("mean / std", source, "", "ratio")]
    png = imaging_panel_png(panels, 0.0004, (4.0, 2.5), 30.0, r"$\frac{a}{$ 8.1 GHz")  # header text: no mathtext
    height, width = mpimg.imread(io.BytesIO(png)).shape[:2]
    assert 500 <= height <= 700 and 850 <= width <= 950, (height, width)
    peaks = {"sky": (0.0, 1.0)}
    assert _norm(panels[1], peaks, 0.02)[0].vmax == _norm(panels[2], peaks, 0.02)[0].vmax == 1.0
    assert _unit(N * 0.0004) == ("mas", 1e-3) and _unit(N * 1.8) == ("arcsec", 1.0) and _unit(64e-6)[0] == "μas"

"""Reading real calibrated visibilities (uvfits) and rejecting bad files with a one-line reason."""

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from sources.uvfits import VisibilityFileError, read_uvfits

VIS = Path(__file__).resolve().parents[1] / "../shared/data/visibilities"
FILES = {"SR1_M87_2017_095_lo_hops_netcal_StokesI.uvfits": (6453, 187.7059, 12.3911),
         "SR1_M87_2017_101_lo_hops_netcal_StokesI.uvfits": (7447, 187.7059, 12.3911),
         "CenA_2017_100_lo_hops_netcal_StokesI.uvfits": (9160, 201.3651, -43.0191),
         "mojave.uvfits": (3150 * 2, 187.7059, 12.3911)}
needs_files = pytest.mark.skipif(not VIS.is_dir(), reason=f"shared visibilities not found at {VIS}")


@needs_files
@pytest.mark.parametrize("name", sorted(FILES))
def test_real_files_read_with_their_phase_centre_and_wavelengths(name):
    rows, ra, dec = FILES[name]
    v = read_uvfits(str(VIS / name))
    assert v.n + v.n_flagged == rows and v.n > 0.9 * rows
    assert (v.ra_deg, v.dec_deg) == pytest.approx((ra, dec), abs=1e-3)
    assert np.all(v.weight > 0) and np.isfinite(v.vis).all()
    uv = np.hypot(v.u, v.v)
    if name == "mojave.uvfits":  # VLBA 8 GHz, 2 IFs, each row at its own frequency
        assert sorted(np.unique(v.freq_hz)) == pytest.approx([8.10445875e9, 8.11245875e9])
        assert 4e6 < uv.min() and uv.max() < 2.4e8
    else:  # EHT 230 GHz: RR = LL copies of one I estimate, weights not doubled
        raw = fits.open(VIS / name)[0].data.data[:, 0, 0, 0, 0, 0, 2]
        np.testing.assert_allclose(np.sort(v.weight), np.sort(raw[raw > 0]))
        assert uv.max() == pytest.approx(8.26e9, rel=0.01)


def _groups(path, stokes_crval=-1.0, weights=1.0, n=20):
    data = np.zeros((n, 1, 1, 1, 1, 2, 3), dtype=np.float32)
    data[..., 0], data[..., 2] = 1.0, weights
    pars = [np.linspace(1e-6, 2e-6, n), np.linspace(-1e-6, 1e-6, n), np.zeros(n), np.full(n, 258.0),
            np.full(n, 2457000.5)]
    gd = fits.GroupData(data, parnames=["UU---SIN", "VV---SIN", "WW---SIN", "BASELINE", "DATE"], pardata=pars,
                        bitpix=-32)
    hdu = fits.GroupsHDU(gd)
    for i, (ctype, crval) in enumerate([("COMPLEX", 1.0), ("STOKES", stokes_crval), ("FREQ", 1.4e9), ("IF", 1.0),
                                        ("RA", 10.0), ("DEC", 20.0)], start=2):
        hdu.header[f"CTYPE{i}"], hdu.header[f"CRVAL{i}"], hdu.header[f"CDELT{i}"] = ctype, crval, -1.0 if ctype == "STOKES" else 1.0
        hdu.header[f"CRPIX{i}"] = 1.0
    hdu.writeto(path)
    return path


def test_a_file_written_here_reads_back(tmp_path):
    v = read_uvfits(str(_groups(tmp_path / "ok.uvfits")))
    assert v.n == 20 and v.stokes_from == "(RR+LL)/2" and v.freq_hz[0] == 1.4e9
    np.testing.assert_allclose(v.u, np.linspace(1e-6, 2e-6, 20) * 1.4e9, rtol=1e-6)


def test_bad_files_get_a_one_line_reason(tmp_path):
    ok = _groups(tmp_path / "ok.uvfits")
    truncated = tmp_path / "truncated.uvfits"
    truncated.write_bytes(ok.read_bytes()[:4000])
    image = tmp_path / "image.fits"
    fits.PrimaryHDU(np.zeros((4, 4))).writeto(image)
    cases = {truncated: "truncated", image: "not a random-groups",
             _groups(tmp_path / "pol.uvfits", stokes_crval=-3.0): "no usable Stokes I",
             _groups(tmp_path / "flagged.uvfits", weights=-1.0): "no unflagged visibility"}
    for path, reason in cases.items():
        with pytest.raises(VisibilityFileError, match=reason) as err:
            read_uvfits(str(path))
        assert str(err.value).startswith(path.name) and "\n" not in str(err.value)
    with pytest.raises(FileNotFoundError):
        read_uvfits(str(tmp_path / "missing.uvfits"))

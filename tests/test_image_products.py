"""The products of ``radio-ddrm image`` as a radio astronomer's tools read them: WSClean-style FITS files that
astropy and ehtim open, a restored image that equals the model convolved with the beam its header states, a
summary for people; and a command line that stops with one line (SIGTERM, missing inputs, a missing
survey store) and says its version and defaults."""

import hashlib
import json
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from flows.cli import main
from tests.test_reliability import EHT, MOJAVE, TOY, _image, needs_files

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-c", "import sys; from flows.cli import main; sys.exit(main())"]
PRODUCTS = ("image", "model", "std", "residual", "psf", "dirty", "clean")


def _header_beam(header: fits.Header, N: int) -> np.ndarray:
    """The restoring beam (N, N), peak 1 at pixel (0, 0) with wrap-around, built from BMAJ/BMIN/BPA alone:
    BPA from North (+row) through East (-column)."""
    scale = header["CDELT2"]
    major, minor, pa = header["BMAJ"] / scale, header["BMIN"] / scale, np.radians(header["BPA"])
    d = np.fft.fftfreq(N, 1 / N)
    row, col = d[:, None], d[None, :]
    along = -col * np.sin(pa) + row * np.cos(pa)
    across = -col * np.cos(pa) - row * np.sin(pa)
    return np.exp(-4 * np.log(2) * ((along / major) ** 2 + (across / minor) ** 2))


@needs_files
def test_wsclean_style_products_open_in_astropy_and_ehtim_and_restore_with_the_header_beam(tmp_path, capsys):
    from astropy.nddata import CCDData

    rc, lines, _ = _image(capsys, MOJAVE, *TOY, "--root", tmp_path / "r")
    assert rc == 0
    folder = Path(lines[0]["fits"]).parent
    files = {p: folder / f"mojave-{p}.fits" for p in PRODUCTS}
    sha = hashlib.sha256(MOJAVE.read_bytes()).hexdigest()
    for name, path in files.items():
        header = fits.getheader(path)
        assert [header[f"CTYPE{i}"] for i in range(1, 5)] == ["RA---SIN", "DEC--SIN", "FREQ", "STOKES"]
        assert header["CDELT3"] == pytest.approx(16e6) and header["CRVAL4"] == 1 and header["DATE-OBS"] == "2006-06-15"
        assert header["OBJECT"] == "1228+126" and header["TELESCOP"] == "VLBA" and header["INSHA256"] == sha
        assert any("command: radio-ddrm image" in h for h in header["HISTORY"]) and header["DDRM_K"] == 2
        assert ("BMAJ" in header) == (header["BUNIT"] == "Jy/beam")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ccd = CCDData.read(path, unit=None if header["BUNIT"] else "")
        assert ccd.unit.to_string() in ("Jy / beam", "Jy / pix", "")
    import ehtim

    model = ehtim.image.load_fits(str(files["model"]))
    restored = ehtim.image.load_fits(str(files["image"]))  # ehtim divides Jy/beam by the header's beam area
    assert restored.total_flux() == pytest.approx(model.total_flux(), rel=0.01)
    image, mean = (fits.getdata(files[p])[0, 0].astype(np.float64) for p in ("image", "model"))
    beam = _header_beam(fits.getheader(files["image"]), image.shape[-1])
    convolved = np.fft.irfft2(np.fft.rfft2(mean) * np.fft.rfft2(beam), s=image.shape)
    assert image.max() == pytest.approx(convolved.max(), rel=0.01)

    summary = json.loads((folder / "summary.json").read_text())
    assert summary["field"]["pixel_scale"].endswith(" mas") and summary["images"]["beam"]["major"].endswith(" mas")
    assert summary["images"]["peak_jy_per_beam"] == pytest.approx(image.max(), rel=1e-4)
    assert summary["images"]["peak_jy_per_beam"] == pytest.approx(summary["images"]["peak_clean_jy_per_beam"], rel=0.1)  # VLBA
    assert summary["images"]["residual_rms_jy_per_beam"] > 0 and summary["products"]["mojave-image.fits"]["bytes"] > 0
    for key, value in summary.items():  # numbers for people: six significant digits, but where the image is
        if isinstance(value, float) and key not in ("ra_deg", "dec_deg", "pixel_scale_arcsec", "ref_freq_hz"):
            assert len(f"{value:.15g}".lstrip("-0.").replace(".", "").rstrip("0").split("e")[0]) <= 6, (key, value)
    assert (folder / "diagnostics.png").read_bytes()[:4] == b"\x89PNG"
    with fits.open(folder / "image.fits") as hdus:  # the samples, for a posterior whose mean is none of them
        samples, header = hdus["SAMPLES"].data, hdus["SAMPLES"].header
        assert samples.shape == (summary["posterior"]["samples"], 1, *mean.shape) and header["CTYPE4"] == "SAMPLE"
        np.testing.assert_allclose(samples[:, 0].astype(np.float64).mean(0), mean, atol=1e-6 * np.abs(mean).max())


@needs_files
def test_sigterm_gives_one_line_exit_143_and_nothing_marked_done(tmp_path):
    proc = subprocess.Popen([*CLI, "image", str(EHT), "--N", "64", "--K", "200", "--samples", "4",
                             "--field-fractions", "1", "--root", str(tmp_path / "r")], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started = time.monotonic()  # the run's root appears once main() runs (its handler set): imports take 3-10 s
    while not (tmp_path / "r").exists() and proc.poll() is None and time.monotonic() - started < 120:
        time.sleep(0.2)
    time.sleep(2)  # into the imaging
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143 and "Traceback" not in err, err[-2000:]
    assert err.strip().splitlines()[-1] == ("radio-ddrm: interrupted; rerun the same command to resume (finished "
                                            "products are kept)")
    assert not list(tmp_path.rglob("summary.json"))


def test_the_command_line_says_its_version_defaults_and_stops_early_with_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.startswith("radio-ddrm 0.")
    with pytest.raises(SystemExit):
        main(["image", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag in ("--K", "--samples", "--weighting", "--robust"):
        assert flag in text
    assert "(default 50)" in text and "(default 16)" in text and "(default natural)" in text
    assert "<root>/images/<run key>/" in text
    t0 = time.monotonic()
    assert main(["report", "--survey", str(tmp_path / "nonexistent")]) == 2
    err = capsys.readouterr().err
    assert "not a readable survey store" in err and len(err.strip().splitlines()) == 1 and time.monotonic() - t0 < 10
    assert main(["image", str(tmp_path / "a.uvfits"), str(tmp_path / "b.uvfits"), "--root", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"radio-ddrm: error: no such input: {tmp_path / 'a.uvfits'}, {tmp_path / 'b.uvfits'}"
    assert not (tmp_path / "r" / "images").exists()


@needs_files
def test_a_held_out_check_with_its_recalibrated_std_and_the_structure_maps(tmp_path, capsys):
    rc, lines, _ = _image(capsys, MOJAVE, *TOY, "--samples", "2", "--holdout", "0.2", "--root", tmp_path / "r")
    assert rc == 0
    folder = Path(lines[0]["fits"]).parent
    check = json.loads((folder / "summary.json").read_text())["predictive"]
    for name in ("visibilities", "visibility_blocks", "closure_phases", "log_closure_amplitudes",
                 "recalibrated_cross_fitted"):
        assert check[name]["n"] > 50 and 0 <= check[name]["coverage_68"] <= check[name]["coverage_95"] <= 1, name
    # the recalibration is fitted and cross-checked on the held-out blocks' mean visibilities, fewer than the data
    assert check["recalibrated_cross_fitted"]["n"] == check["visibility_blocks"]["n"] < check["visibilities"]["n"]
    assert check["conformal_fitted_on"] == "visibility_blocks" and "systematic_fraction" not in check
    c = check["conformal_scale"]
    std, recalibrated = (fits.getdata(folder / f"mojave-{p}.fits")[0, 0] for p in ("std", "std-recalibrated"))
    assert np.allclose(recalibrated, c * std, rtol=2e-6) and "conformal" in fits.getheader(
        folder / "mojave-std-recalibrated.fits")["PRODUCT"] + fits.getheader(folder / "mojave-std-recalibrated.fits")\
        .comments["PRODUCT"]
    halfwidth = fits.getdata(folder / "mojave-halfwidth95-recalibrated.fits")[0, 0]
    assert check["tail_bound_95"] >= 2 and np.allclose(halfwidth, check["tail_bound_95"] * recalibrated, rtol=2e-6)
    assert check["recalibrated_cross_fitted_two_sigma"]["n"] == check["recalibrated_cross_fitted"]["n"]
    detection = fits.getdata(folder / "mojave-detection.fits")[0, 0]
    assert set(np.unique(detection)) <= {0.0, 0.5, 1.0} and detection.max() == 1.0  # shares of 2 samples

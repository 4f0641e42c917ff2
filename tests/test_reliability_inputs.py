"""Hostile files, read as a careless pipeline writes them: autocorrelations among the visibilities, garbage
antenna numbers, NaN times, absurd weights, headers whose strings are not numbers, dates or plain text, and a
gzip bomb. Real files (copies of the shared observations, edited with astropy); the real reader and command."""

import gzip
import json
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from ddrm.radio.gains import solution_intervals
from sources.fits_bounds import check_compressed
from sources.uvfits import VisibilityFileError, read_uvfits
from tests.test_reliability import EHT, MOJAVE, TOY, _altered, _image, needs_files

pytestmark = needs_files


def _rows(hdul, name: str) -> np.ndarray:
    g = hdul[0].data
    return g.field(g.parnames.index(name))


# ---- 1. autocorrelations ---------------------------------------------------------------------------------

def test_autocorrelations_are_dropped_at_reading_counted_and_never_imaged(tmp_path, capsys):
    rows = np.arange(252)

    def autocorrelations(hdul):  # 252 rows become antenna 1 x antenna 1 at u = v = 0, |V|² of a station: 3000 Jy
        _rows(hdul, "BASELINE")[rows] = 257.0
        for name in ("UU---SIN", "VV---SIN", "WW---SIN"):
            _rows(hdul, name)[rows] = 0.0
        hdul[0].data.data[rows, ..., 0], hdul[0].data.data[rows, ..., 1] = 3000.0, 0.0

    def flagged(hdul):  # the same rows flagged instead
        hdul[0].data.data[rows, ..., 2] = 0.0

    auto = read_uvfits(str(_altered(EHT, tmp_path / "auto.uvfits", autocorrelations)))
    cross = read_uvfits(str(_altered(EHT, tmp_path / "flagged.uvfits", flagged)))
    assert auto.n == cross.n and np.array_equal(auto.vis, cross.vis) and np.array_equal(auto.u, cross.u)
    assert auto.n_autocorrelations == read_uvfits(str(EHT)).n - cross.n > 0
    assert auto.n + auto.n_flagged == cross.n + cross.n_flagged and not (auto.antenna1 == auto.antenna2).any()
    assert any("autocorrelations" in w for w in auto.warnings)
    rc, lines, _ = _image(capsys, tmp_path / "auto.uvfits", *TOY, "--root", tmp_path / "r")
    summary = json.loads((Path(lines[0]["fits"]).parent / "summary.json").read_text())
    assert rc == 0 and summary["observation"]["n_autocorrelations"] == auto.n_autocorrelations
    assert 0.2 < summary["posterior"]["total_flux_jy"] < 5  # M87 at 230 GHz is about 1 Jy; with the autocorrelations 2979 Jy

    def zero_baselines(hdul):  # every BASELINE 0: antenna 0 with itself, nothing but autocorrelations
        _rows(hdul, "BASELINE")[:] = 0.0
        del hdul["AIPS AN"]

    rc, lines, _ = _image(capsys, _altered(EHT, tmp_path / "zero.uvfits", zero_baselines), *TOY,
                          "--root", tmp_path / "r")
    assert rc == 1 and lines[-1]["skipped"][0]["error"].startswith("zero.uvfits: no cross-correlation")


# ---- 5, 6. garbage antennas and times ------------------------------------------------------------------

def test_garbage_antenna_numbers_and_nan_times_are_flagged_and_counted(tmp_path):
    clean = read_uvfits(str(MOJAVE))

    def garbage(hdul):
        baseline = _rows(hdul, "BASELINE")
        baseline[:100] = np.random.default_rng(0).uniform(7e4, 2e8, 100)  # antennas that are in no table
        baseline[100:110] = np.nan
        _rows(hdul, "DATE")[200:300] = np.nan

    v = read_uvfits(str(_altered(MOJAVE, tmp_path / "garbage.uvfits", garbage)))
    stations = set(fits.getdata(MOJAVE, "AIPS AN")["NOSTA"])
    assert set(np.unique(v.antenna1)) | set(np.unique(v.antenna2)) <= stations
    per_row = (clean.n + clean.n_flagged) // 3150  # visibilities per row (IFs x channels)
    assert v.n_bad_antennas <= 110 * per_row and v.n_bad_antennas > 100 and v.n_bad_times > 90
    assert v.n + v.n_bad_antennas + v.n_bad_times <= clean.n and np.isfinite(v.time_jd).all()
    assert any("antennas not in the AN table" in w for w in v.warnings)
    assert any("non-finite time" in w for w in v.warnings)
    assert np.isfinite(solution_intervals(v.time_jd, "scan")).all()

    def no_table(hdul):  # without an AN table, antennas beyond the 256 code's bound are flagged
        _rows(hdul, "BASELINE")[:50] = 1e9  # antenna 488,249 by the 2048 code: over its bound of 2047
        del hdul["AIPS AN"]

    v = read_uvfits(str(_altered(MOJAVE, tmp_path / "notable.uvfits", no_table)))
    assert v.n_bad_antennas > 0 and v.antenna1.max() <= 255


# ---- 14. weights, dates ---------------------------------------------------------------------------------

def test_unphysical_weights_are_flagged_and_a_garbage_date_is_not_copied(tmp_path):
    def edit(hdul):
        w = hdul[0].data.data[:20, ..., 2]
        w[w > 0] = 1e30  # sigma 1e-15 Jy
        hdul[0].header["DATE-OBS"] = "yesterday-ish"

    v = read_uvfits(str(_altered(MOJAVE, tmp_path / "w.uvfits", edit)))
    clean = read_uvfits(str(MOJAVE))
    assert v.n_bad_weights > 0 and v.weight.max() <= clean.weight.max() and v.n + v.n_bad_weights == clean.n
    assert v.date_obs == "" and any("DATE-OBS" in w for w in v.warnings)
    assert clean.date_obs == "2006-06-15" and not clean.warnings


# ---- 2. headers whose strings break the batch --------------------------------------------------------------

def test_bad_header_strings_are_warnings_or_named_skips_and_the_batch_goes_on(tmp_path, capsys, monkeypatch):
    def obsra(hdul):
        hdul[0].header["OBSRA"] = "twelve hours"

    def mathtext(hdul):
        hdul[0].header["OBJECT"] = r"$\frac{a}{$"

    files = [_altered(MOJAVE, tmp_path / "ra.uvfits", obsra), _altered(MOJAVE, tmp_path / "tex.uvfits", mathtext),
             tmp_path / "boom.uvfits"]
    (tmp_path / "boom.uvfits").write_bytes(MOJAVE.read_bytes())
    import imager.file as image

    real = image.read_visibilities

    def read(path):  # an error of a kind no reader names (the fault, injected for one file)
        if path.endswith("boom.uvfits"):
            raise ZeroDivisionError("float division by zero")
        return real(path)

    monkeypatch.setattr(image, "read_visibilities", read)
    rc, lines, err = _image(capsys, *files, *TOY, "--root", tmp_path / "r")
    assert rc == 1 and [line["file"] for line in lines[:-1]] == list(map(str, files[:2]))
    assert lines[-1]["skipped"] == [{"file": str(files[2]),
                                     "error": "boom.uvfits: ZeroDivisionError: float division by zero"}]
    ra = json.loads((Path(lines[0]["fits"]).parent / "summary.json").read_text())
    ra = ra["observation"]
    assert abs(ra["ra_deg"] - 187.7059) < 1e-3 and any("OBSRA" in w for w in ra["warnings"])
    assert Path(lines[1]["png"]).stat().st_size > 10_000 and "Traceback" not in err


# ---- 8. a gzip bomb -------------------------------------------------------------------------------------

def _bomb(path: Path, padding: int) -> Path:
    """MOJAVE's bytes followed by ``padding`` zero bytes, gzipped (level 1, fast): a few MB."""
    z = zlib.compressobj(1, zlib.DEFLATED, 31)
    with open(path, "wb") as f:
        f.write(z.compress(MOJAVE.read_bytes()))
        zeros = bytes(1 << 24)
        for _ in range(padding >> 24):
            f.write(z.compress(zeros))
        f.write(z.flush())
    return path


def test_a_gzip_bomb_is_refused_early_in_bounded_memory(tmp_path, capsys):
    bomb = _bomb(tmp_path / "bomb.uvfits.gz", 1 << 29)  # 0.5 GiB of zeros in under 4 MB
    assert bomb.stat().st_size < 4 << 20
    code = ("import resource, sys\nfrom sources.uvfits import read_uvfits, VisibilityFileError\n"
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "try:\n    read_uvfits(sys.argv[1])\nexcept VisibilityFileError as err:\n    print(err)\n"
            "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)")
    out = subprocess.run([sys.executable, "-c", code, str(bomb)], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[1]).stdout.splitlines()
    assert "decompression bomb" in out[0] and int(out[-1]) < 64, out  # MiB of peak memory added while refusing
    rc, lines, _ = _image(capsys, bomb, *TOY, "--root", tmp_path / "r")
    assert rc == 1 and lines[-1]["skipped"][0]["error"].startswith("bomb.uvfits.gz: decompresses to more than")

    good = tmp_path / "good.uvfits.gz"  # an honest gzip reads as its uncompressed file
    good.write_bytes(gzip.compress(MOJAVE.read_bytes()))
    assert read_uvfits(str(good)).n == read_uvfits(str(MOJAVE)).n

    with fits.open(MOJAVE) as hdul:  # a header that declares more than memory holds: refused at the header
        header = hdul[0].header.copy()
    header["GCOUNT"] = 10 ** 9
    (tmp_path / "huge.gz").write_bytes(gzip.compress(header.tostring().encode()))
    with pytest.raises(ValueError, match="declares .* GiB"):
        check_compressed(str(tmp_path / "huge.gz"), available=8 << 30)
    with pytest.raises(VisibilityFileError, match="huge.gz"):
        read_uvfits(str(tmp_path / "huge.gz"))

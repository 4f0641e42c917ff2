"""``image_observations`` with real Ray and Prefect on a real file: FITS with a true WCS, a corrupt file
skipped with its reason, an actor that dies mid-file (its file goes to the other), and a rerun that
images only what is missing."""

import json
import os
from pathlib import Path

import pytest
from astropy.io import fits
from astropy.wcs import WCS

from configs.image import ImageConfig
from imager.product import ImagingProduct
from flows.image import image_observations

VIS = Path(__file__).resolve().parents[1] / "../shared/data/visibilities"
pytestmark = pytest.mark.skipif(not VIS.is_dir(), reason=f"shared visibilities not found at {VIS}")


def test_flow_images_skips_a_corrupt_file_survives_a_dead_actor_and_resumes(ray_session, tmp_path, monkeypatch):
    import ray

    from tests.faults import dying_imager

    marker = tmp_path / "died"
    monkeypatch.setattr("tasks.image_pool.RemoteImager", ray.remote(max_restarts=0)(dying_imager("mojave.uvfits",
                                                                                             str(marker))))
    bad = tmp_path / "corrupt.uvfits"
    bad.write_bytes((VIS / "mojave.uvfits").read_bytes()[:5000])
    files = [str(VIS / "mojave.uvfits"), str(bad)]
    cfg = ImageConfig.of(N=32, K=3, samples=2, selfcal="none", likelihood="gridded",
                         field_fractions=(1.0,))  # the subject: the pool and resume, not the imaging
    root = str(tmp_path / "run")
    out = image_observations(files, cfg, root=root, num_actors=2)
    assert marker.exists()  # the actor given mojave died; the file was imaged by the other (or a replacement)
    monkeypatch.undo()
    assert out["images"] == 1 and out["skipped"] == 1 and out["imaged_now"] == 1
    assert any("corrupt.uvfits" in str(r["source"]) and "truncated" in str(r["source"]) for r in out["rows"])
    [written] = (tmp_path / "run").glob("images/image-*/mojave.uvfits-*/summary.json")
    summary = ImagingProduct.from_dict(json.loads(written.read_text()))
    with fits.open(summary.images.fits) as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", "STD", "DIRTY", "CLEAN", "RESIDUAL", "SAMPLES"]
        wcs = WCS(hdul[0].header)
        assert list(wcs.wcs.ctype) == ["RA---SIN", "DEC--SIN", "FREQ"]
        assert tuple(wcs.wcs.crval[:2]) == pytest.approx((summary.observation.ra_deg, summary.observation.dec_deg))
        assert -wcs.wcs.cdelt[0] * 3600 == pytest.approx(summary.field.pixel_scale_arcsec, rel=1e-9)
        assert hdul[0].header["BUNIT"] == "Jy/pixel" and hdul["CLEAN"].header["BMAJ"] > 0
        assert hdul[0].header["DATE-OBS"].startswith("2006-06-15")
    stamp = os.path.getmtime(summary.images.fits)
    again = image_observations(files, cfg, root=root, num_actors=2)
    assert again["imaged_now"] == 0 and os.path.getmtime(summary.images.fits) == stamp  # nothing done twice
    os.remove(written)  # an interrupted file: no summary yet
    assert image_observations(files, cfg, root=root, num_actors=2)["imaged_now"] == 1

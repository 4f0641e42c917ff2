"""The pixel scale chosen from the data (``imager.scale``): the choice rule in closed form, the config
and command line refusing bad ladders, and one real EHT file end to end: the kept scale is the best-scoring
candidate and equals a run at that scale set by hand."""

from __future__ import annotations

import argparse
import math
from dataclasses import replace

import numpy as np
import pytest

from configs.image import ImageConfig
from ddrm.radio.closure import closures
from flows.cli_options import fractions
from imager.product import ClosureFit
from imager.scale import FITS_DATA, best_candidate, closure_score, difference_errors
from tests.test_uvfits import VIS, needs_files

M87 = "SR1_M87_2017_095_lo_hops_netcal_StokesI.uvfits"


def test_the_lowest_finite_score_wins_and_ties_keep_the_smaller_field():
    assert best_candidate([3.0, 1.0, 2.0]) == 1
    assert best_candidate([math.nan, 2.0, 1.5]) == 2
    assert best_candidate([1.0, 1.0, 1.0]) == 2  # a tie keeps the smallest field: the fewest beams
    assert best_candidate([math.nan, math.nan]) == 0  # no closures anywhere: s₀


def test_only_the_fields_that_fit_their_own_scans_compete_on_the_held_out_score():
    # a jet that fills the largest field: the smaller fields cannot fit the scans they saw (χ² 2.3, 7.1), and
    # held out they score better only because held-out scans lie in uv gaps no field predicts (shared MOJAVE
    # file: 185 / 36 / 6.5 held out, 1.28 / 2.3 / 7.1 on its own scans)
    assert best_candidate([185.0, 36.0, 6.5], [1.28, 2.3, 7.1]) == 0
    assert best_candidate([185.0, 36.0, 6.5], [1.28, FITS_DATA, 7.1]) == 1  # the bound itself fits
    assert best_candidate([185.0, 36.0, 6.5], [3.0, 2.3, 7.1]) == 2  # none fits: all compete
    assert best_candidate([185.0, 36.0, 6.5], [None, None, None]) == 2  # not known: all compete
    assert best_candidate([185.0, math.nan, 6.5], [1.0, 1.0, 9.0]) == 0  # an eligible NaN does not win


def test_held_out_scores_within_the_standard_error_of_their_difference_tie_and_keep_the_smaller_field():
    # a synthetic EHT ring40 on M87 101's track (S 8): held-out 4.39 / 1.561 / 1.519, difference 0.042 ± 0.049
    # paired, a tie: the 90 µas field is kept (ρ_NX 0.97; the 180 µas one put copies of the ring around it, 0.83)
    assert best_candidate([4.39, 1.561, 1.519], [8.76, 1.63, 1.24], [0.249, 0.049, 0.0]) == 2
    assert best_candidate([4.0, 1.50, 1.55], None, [0.3, 0.0, 0.06]) == 2  # the lowest is larger: the tie wins
    assert best_candidate([4.0, 1.50, 1.60], None, [0.3, 0.0, 0.06]) == 1  # 0.10 ± 0.06: not a tie
    assert best_candidate([1.20, 0.606, 0.568], None, [0.14, 0.022, 0.0]) == 2  # M87 095: 0.038 ± 0.022
    assert best_candidate([7.0, 6.81, 7.11], [1.5, 1.4, 9.0], [0.5, 0.0, 0.5]) == 1  # an unfit field does not tie
    assert best_candidate([1.0, 2.0, 3.0], None, [None, None, None]) == 0  # no error: the lowest
    rng = np.random.default_rng(0)
    shared = rng.chisquare(1, 400) * 5  # the closures' own scatter, common to every candidate
    terms = [shared + 0.3, shared, shared + 0.05 + rng.normal(0, 0.5, 400)]
    errors = difference_errors(terms, 1)
    assert errors[1] == 0.0
    assert errors[2] == pytest.approx(np.std(terms[2] - shared, ddof=1) / 20)
    assert errors[2] < np.std(terms[2], ddof=1) / 20 / 5  # paired: the common scatter cancels
    assert best_candidate([float(t.mean()) for t in terms], None, errors) == 2  # 0.013 apart, its paired error 0.025: a tie
    unpaired = difference_errors([shared[:300], shared], 1)
    assert unpaired[0] == pytest.approx(math.hypot(np.std(shared[:300], ddof=1) / math.sqrt(300),
                                                   np.std(shared, ddof=1) / 20))


def test_each_closures_term_averages_to_its_chi2():
    rng = np.random.default_rng(4)
    n, t = 6, np.repeat(np.arange(3.0), 15) / 86400
    a1, a2 = (np.tile(x, 3) for x in zip(*[(p, q) for p in range(n) for q in range(p + 1, n)]))
    vis = rng.normal(size=45) + 1j * rng.normal(size=45) + 3
    c = closures(vis, np.full(45, 4.0), a1, a2, t + 2.46e6, np.full(45, 230e9), snr_cut=0)
    model = vis * np.exp(0.3j * rng.normal(size=45)) * rng.uniform(0.8, 1.2, 45)
    terms = c.terms(model)
    assert len(terms) == len(c.phase) + len(c.logamp) and len(c.phase) > 0 and len(c.logamp) > 0
    assert terms[:len(c.phase)].mean() == pytest.approx(c.chi2_phase(model), rel=1e-12)
    assert terms[len(c.phase):].mean() == pytest.approx(c.chi2_logamp(model), rel=1e-12)


def test_the_score_pools_both_closure_kinds_per_closure():
    fit = ClosureFit(n_closure_phases=30, n_log_closure_amplitudes=10, chi2_cphase_mean=1.0, chi2_logcamp_mean=5.0,
                     chi2_cphase_clean=None, chi2_logcamp_clean=None)
    assert closure_score(fit) == pytest.approx((30 * 1.0 + 10 * 5.0) / 40)
    assert closure_score(replace(fit, n_log_closure_amplitudes=0)) == 1.0  # three stations: phases only
    assert math.isnan(closure_score(replace(fit, n_closure_phases=0, n_log_closure_amplitudes=0)))


@pytest.mark.parametrize("bad", [(), (0.5, 0.5), (1.5,), (0.0, 1.0)])
def test_a_bad_ladder_is_refused_where_the_config_is_built(bad):
    with pytest.raises(ValueError, match="field_fractions"):
        ImageConfig.of(field_fractions=bad)
    with pytest.raises(argparse.ArgumentTypeError):
        fractions(",".join(str(b) for b in bad) or "x")
    with pytest.raises(ValueError, match="field_fractions"):
        ImageConfig.of(field_fractions=("1",))


def test_a_json_list_becomes_the_same_frozen_config():
    assert ImageConfig.of(field_fractions=[1, 0.5]) == ImageConfig.of(field_fractions=(1, 0.5))
    assert fractions("1,0.5,0.25") == (1.0, 0.5, 0.25)


@needs_files
def test_on_a_real_eht_file_the_best_held_out_closure_fit_is_kept_and_reproducible(tmp_path):
    from astropy.io import fits

    from imager.file import image_file

    cfg = ImageConfig.of(N=32, K=3, samples=1, field_fractions=(1.0, 0.25))
    searched = image_file(str(VIS / M87), cfg, root=str(tmp_path / "a")).product
    candidates = searched.field.candidates
    assert [c.pixel_scale_arcsec for c in candidates] == pytest.approx(
        [candidates[0].pixel_scale_arcsec, candidates[0].pixel_scale_arcsec / 4], rel=1e-12)
    best = candidates[best_candidate(*zip(*[(c.closure_score, c.chi2_fitted, c.difference_se) for c in candidates]))]
    assert searched.field.pixel_scale_arcsec == best.pixel_scale_arcsec
    assert all(np.isfinite(c.closure_score) and np.isfinite(c.chi2_fitted) and c.scored_on == "held-out scans"
               and c.n_scored > 0 for c in candidates)
    by_hand = image_file(str(VIS / M87), ImageConfig.of(N=32, K=3, samples=1, pixel_scale=best.pixel_scale_arcsec),
                         root=str(tmp_path / "b")).product
    assert by_hand.field.candidates is None  # a scale set by hand is not searched
    with fits.open(searched.images.fits) as a, fits.open(by_hand.images.fits) as b:
        # the same generators at every run; the final image is recomputed, so threads' rounding (amplified by
        # the iterative solves) leaves differences of a few 1e-3 of the peak
        np.testing.assert_allclose(a[0].data, b[0].data, rtol=0, atol=1e-2 * float(np.abs(b[0].data).max()))

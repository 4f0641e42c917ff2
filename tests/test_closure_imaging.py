"""Closure imaging of sparse VLBI: the phase-stability statistic in closed form, the held-out scans, and a
synthetic EHT file with uncalibrated station phases (written by ehtim on the real M87 track) on which the
closure posterior recovers a ring and the visibility posterior does not."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from ddrm.radio.crossval import scan_holdout, scan_index
from ddrm.radio.phase_stability import PHASE_WANDER_LIMIT, choose_data_term, phase_scatter_ratio


def _track(n_ant=5, n_times=200, seed=0, wander=0.0, snr=20.0):
    """A constant 1 Jy point source seen by n_ant stations every 10 s, thermal noise at S/N ``snr`` per
    visibility, and station phases that random-walk by ``wander`` rad per integration."""
    rng = np.random.default_rng(seed)
    a1, a2 = np.triu_indices(n_ant, 1)
    phases = np.cumsum(rng.normal(0, wander, (n_times, n_ant)), 0) if wander else np.zeros((n_times, n_ant))
    t = np.repeat(np.arange(n_times) * 10 / 86400, len(a1))
    p1, p2 = np.tile(a1, n_times), np.tile(a2, n_times)
    k = np.repeat(np.arange(n_times), len(a1))
    sigma = 1 / snr
    vis = np.exp(1j * (phases[k, p1] - phases[k, p2])) + sigma * (rng.normal(size=len(t)) + 1j * rng.normal(size=len(t)))
    return vis, np.full(len(t), 1 / sigma ** 2), p1, p2, t, np.full(len(t), 230e9)


def test_the_phase_step_statistic_is_one_for_thermal_phases_and_large_for_wandering_ones():
    stable, steps = phase_scatter_ratio(*_track())
    assert steps == 10 * 199 and stable == pytest.approx(1.0, abs=0.1)  # χ²₁'s median, normalised
    wandering, _ = phase_scatter_ratio(*_track(wander=0.3))
    # a baseline's step adds two stations' wander, 2 · 0.3², to the thermal 2 σ²/|V|² = 2/20²
    assert wandering == pytest.approx(1 + 2 * 0.3 ** 2 / (2 / 20 ** 2), rel=0.15) and wandering > PHASE_WANDER_LIMIT
    assert choose_data_term("auto", wandering)[0] == "closures"
    assert choose_data_term("auto", stable)[0] == "visibilities"
    assert choose_data_term("auto", float("nan"))[0] == "visibilities"
    assert choose_data_term("closures", stable) == ("closures", "set by the user")


def test_held_out_scans_are_whole_disjoint_and_seeded():
    t = np.concatenate([s * 3600 + np.arange(20) * 10 for s in range(10)]) / 86400
    held = scan_holdout(t, 0.2, seed=4)
    scans = scan_index(t)
    assert len(np.unique(scans[held])) == 2 and not np.isin(scans[~held], scans[held]).any()  # whole scans
    assert np.array_equal(held, scan_holdout(t, 0.2, seed=4))
    assert any(not np.array_equal(held, scan_holdout(t, 0.2, seed=s)) for s in range(5, 9))
    assert not scan_holdout(t[:20], 0.5, seed=0).any()  # one scan: nothing to hold out


@pytest.fixture(scope="module")
def ring_file(tmp_path_factory):
    from tests.ehtim_files import crescent, observe

    sky = crescent(40, 8)  # M87-like: brighter in the South
    return sky, observe(sky, str(tmp_path_factory.mktemp("eht") / "crescent.uvfits"), seed=3)


def test_the_closure_posterior_recovers_a_ring_that_the_visibility_posterior_does_not(ring_file):
    from configs.image import ImageConfig
    from ddrm.inverse.metrics import nxcorr
    from ddrm.inverse.samplers import make_generators
    from ddrm.radio.closure_imaging import image_closures
    from ddrm.radio.imaging_config import ClosureImagingConfig
    from ddrm.radio.gains import solution_intervals
    from ddrm.radio.imaging import image_visibilities
    from ddrm.radio.selfcal import SelfCalConfig
    from sources.measurement_set import read_visibilities
    from stores.checkpoints import load_prior

    sky, path = ring_file
    vis = read_visibilities(path)
    N, pixel_uas = 64, 1.4
    cfg = ImageConfig.of(N=N, K=10, samples=2, pixel_scale=pixel_uas * 1e-6)
    data = vis.with_intervals(solution_intervals(vis.time_jd, "scan"))
    prior = load_prior("first", torch.device("cpu"))
    truth = torch.from_numpy(sky.render(N, pixel_uas))
    closing = replace(cfg, likelihood=replace(cfg.likelihood, closure=ClosureImagingConfig(iterations=12)))
    closed = image_closures(prior, data, closing, make_generators([1]))
    phased = image_visibilities(prior, data, replace(cfg, selfcal=SelfCalConfig(mode="phase")), make_generators([1]))
    rho_closures = nxcorr(closed.result.mean, truth, 10 / pixel_uas)
    rho_visibilities = nxcorr(phased.result.mean, truth, 10 / pixel_uas)
    assert rho_closures > 0.8 > rho_visibilities + 0.1, (rho_closures, rho_visibilities)
    assert closed.result.likelihood == "closures"
    assert abs(float(closed.result.mean.sum()) - sky.flux) < 0.1 * sky.flux  # the short baselines' flux
    candidate = image_closures(prior, data, closing, make_generators([1]), gains=False)  # a field search's
    assert torch.equal(candidate.result.samples, closed.result.samples)  # the gains change no sample
    assert candidate.selfcal is None and closed.selfcal is not None and np.array_equal(candidate.data.vis, data.vis)


def test_the_ring_fit_measures_known_rings():
    from ddrm.radio.ring_fit import ring_fit
    from tests.ehtim_files import crescent, ring

    for sky, diameter, pa in ((crescent(40, 8), 40, 180), (crescent(30, 6, 90), 30, 90), (ring(44, 8), 44, None)):
        fit = ring_fit(torch.from_numpy(sky.render(64, 1.4)), 1.4)
        assert fit["diameter"] == pytest.approx(diameter, abs=1.0), (sky.name, fit)
        if pa is None:
            assert fit["asymmetry"] < 0.02
        else:
            assert abs((fit["brightest_pa_deg"] - pa + 180) % 360 - 180) < 10 and fit["asymmetry"] > 0.2


def test_the_start_gaussian_reads_its_size_from_the_main_lobe():
    """A Gaussian's σ comes back exactly; a thin ring of radius r, J0(2π r q), whose main lobe falls as
    exp(-π² r² q²), gets σ ≈ r/√2 (within 10 %), not the compact Gaussian that its sidelobes would give."""
    from scipy.special import j0

    from ddrm.radio.closure_imaging import gaussian_sigma
    from ddrm.radio.visibilities import Visibilities

    uas = 4.8481368e-12  # radians
    rng = np.random.default_rng(0)
    q = rng.uniform(0.05e9, 8e9, 4000)
    th = rng.uniform(0, np.pi, len(q))
    uv = np.stack([q * np.cos(th), q * np.sin(th)], 1)
    weight = np.full(len(q), 1e6)  # S/N ≥ 3 down to |V| of 3 mJy
    sigma0, r = 12 * uas, 30 * uas
    gauss = Visibilities(uv=uv, vis=0.6 * np.exp(-2 * np.pi ** 2 * sigma0 ** 2 * q ** 2) + 0j, weight=weight)
    assert gaussian_sigma(gauss, 0.6) == pytest.approx(sigma0, rel=1e-9)
    ring = Visibilities(uv=uv, vis=0.6 * j0(2 * np.pi * r * q) + 0j, weight=weight)
    assert gaussian_sigma(ring, 0.6) == pytest.approx(r / np.sqrt(2), rel=0.1)
    point = Visibilities(uv=uv, vis=np.full(len(q), 0.6 + 0j), weight=weight)
    assert gaussian_sigma(point, 0.6) == 0.0

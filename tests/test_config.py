"""The imaging house's contracts: every config round-trips through JSON by one generic rule, the command line's
options come from the config's fields, the NUFFT is keyword-only in radians, one Visibilities type, seeds by
name, and the self-calibration's trace is returned, never changed in place."""

from __future__ import annotations

import argparse
import json
from dataclasses import FrozenInstanceError

import numpy as np
import pytest
import torch

from configs import PREPARE_PRESETS, RECONSTRUCT_PRESETS, SURVEY_PRESETS, TRAIN_PRESETS
from configs.image import ImageConfig, image_config
from ddrm.config import from_dict, options
from ddrm.inverse.samplers import SamplerConfig, SplitGibbsConfig


def _json(config) -> dict:
    return json.loads(json.dumps(config.to_dict()))


@pytest.mark.parametrize("config", [
    ImageConfig(),
    ImageConfig.of(N=64, pixel_scale=2e-5, field_fractions=(1.0, 0.5), weighting="briggs", robust=-0.5,
                   sampler=SplitGibbsConfig(sweeps=3), K=7, samples=3, noise="scatter", data="closures",
                   likelihood="gridded", total_flux=0.6, selfcal="amp-phase", solint=30.0, prior="x", holdout=0.2,
                   strict=True, seed=5),
    TRAIN_PRESETS["first"], PREPARE_PRESETS["demo"], RECONSTRUCT_PRESETS["demo"],
], ids=["image-defaults", "image-all-options", "train", "prepare", "reconstruct"])
def test_every_config_round_trips_through_json(config):
    assert type(config).from_dict(_json(config)) == config


def test_a_sampler_comes_back_as_its_own_class_and_unknown_settings_are_named():
    back = SamplerConfig.from_dict(_json(SplitGibbsConfig(rho_max=3.0)))
    assert type(back) is SplitGibbsConfig and back.rho_max == 3.0
    with pytest.raises(ValueError, match="'colour'"):
        from_dict(ImageConfig, {**ImageConfig().to_dict(), "colour": "blue"})
    with pytest.raises(ValueError, match="N"):
        ImageConfig.of(N=8)  # validated where it is built
    assert SURVEY_PRESETS["demo"].reconstruct.to_dict()["samplers"][0]["sampler"] == "ddrm"


def test_the_command_line_options_are_the_configs_fields_with_their_defaults():
    from flows.cli_options import add_config_options, given_options

    parser = argparse.ArgumentParser()
    add_config_options(parser, ImageConfig())
    flags = {a.dest: a for a in parser._actions if a.dest != "help"}
    named = {f.metadata.get("name") or path[-1] for path, f, _ in options(ImageConfig)}
    assert set(flags) == named and "--pixel-scale" in flags["pixel_scale"].option_strings
    assert "(default 150)" in flags["N"].help and "(default auto)" in flags["selfcal"].help
    args = parser.parse_args(["--N", "64", "--pixel-scale", "20uas", "--selfcal-gains", "draw", "--solint", "inf"])
    cfg = ImageConfig.of(**given_options(args, ImageConfig))
    assert cfg.grid.N == 64 and cfg.grid.pixel_scale_arcsec == pytest.approx(2e-5) and cfg.selfcal.draw
    assert cfg.selfcal.solint == float("inf") and cfg.sampler == ImageConfig().sampler  # the rest: defaults
    given = {"N": 64, "pixel_scale": cfg.grid.pixel_scale_arcsec, "selfcal_gains": "draw", "solint": float("inf")}
    assert image_config(given) == cfg  # a deployment's parameters: the same options by name


def test_the_run_key_hashes_exactly_the_configs_json():
    from imager.file import run_settings
    from stores.checkpoints import load_prior

    cfg = ImageConfig.of(N=64)
    settings = run_settings(cfg, load_prior("first", torch.device("cpu")))
    assert {k: v for k, v in settings.items() if k not in ("algorithm", "prior_sha256")} == \
        {k: v for k, v in cfg.to_dict().items() if k != "strict"}


def test_the_nufft_is_keyword_only_in_radians():
    from ddrm.radio.gridding import ARCSEC
    from ddrm.radio.nufft import adjoint, degrid

    uv, image = np.array([[1e4, -2e4], [3e3, 5e3]]), torch.rand(16, 16, dtype=torch.float64)
    with pytest.raises(TypeError):
        degrid(image, uv, 1e-3 * ARCSEC)  # noqa: the positional form is gone
    v = degrid(uv=uv, image=image, pixel_size=1e-3 * ARCSEC)
    l, m = -(np.arange(16) - 8) * 1e-3 * ARCSEC, (np.arange(16) - 8) * 1e-3 * ARCSEC  # gridding: V = Σ I exp(+2πi(u l + v m))
    direct = [(image.numpy() * np.exp(2j * np.pi * (u * l[None, :] + w * m[:, None]))).sum() for u, w in uv]
    np.testing.assert_allclose(v, direct, rtol=1e-6)
    back = adjoint(uv=uv, vis=v, npix=16, pixel_size=1e-3 * ARCSEC)
    assert float((back.numpy() * image.numpy()).sum()) == pytest.approx(float(np.vdot(v, v).real), rel=1e-6)


def test_one_visibilities_type_keeps_what_a_reader_adds():
    from ddrm.radio.gains import GainSolution
    from ddrm.radio.visibilities import Visibilities

    vis = Visibilities(uv=np.ones((4, 2)), vis=np.arange(4) + 1j, weight=np.full(4, 2.0), antenna1=[0, 0, 1, 1],
                       antenna2=[1, 2, 2, 3], antennas=((0, "A"), (1, "B"), (2, "C"), (3, "D")))
    sub = vis.subset(np.array([True, False, True, False]))
    assert sub.n == 2 and sub.antennas == vis.antennas and list(sub.antenna2) == [1, 2]
    gains = np.full((1, 4), 2.0 + 0j)
    sol = GainSolution(np.arange(4), gains, np.ones((1, 4), bool), np.zeros(1, int), np.zeros(4, int), np.zeros(1),
                       np.ones(1))
    fixed = vis.corrected(sol)  # V / (g_p g_q*), w |g_p g_q*|²
    np.testing.assert_allclose(fixed.vis, vis.vis / 4) and np.testing.assert_allclose(fixed.weight, vis.weight * 16)
    with pytest.raises(ValueError, match="per-sample"):
        Visibilities(uv=np.ones((3, 2)), vis=np.ones(4), weight=np.ones(4))


def test_stages_draw_independent_streams_by_name():
    from ddrm.seeding import stage_generators

    g = [torch.Generator().manual_seed(7)]
    a, b, a2 = (torch.rand(3, generator=stage_generators(g, name)[0]) for name in ("chain", "start", "chain"))
    assert torch.equal(a, a2) and not torch.equal(a, b)


def test_the_self_calibration_trace_is_returned_not_changed():
    from ddrm.radio.selfcal import SelfCalConfig, SelfCalTrace

    trace = SelfCalTrace(SelfCalConfig())
    more = trace.with_row({"stage": "point", "chi2": 1.0})
    assert trace.rounds == () and len(more.rounds) == 1
    with pytest.raises(FrozenInstanceError):
        trace.converged = True  # noqa

import math

import pytest
import torch

import ddrm.inverse.metrics as metrics


def test_known_mse_gives_known_psnr_and_snr():
    truth = torch.full((1, 8, 8), 0.5, dtype=torch.float64)
    samples = (truth + 0.01)[:, None].repeat(1, 3, 1, 1)
    samples[:, 1] = truth - 0.01
    m = metrics.all_metrics(samples, truth)
    assert float(m["mse"]) == pytest.approx(1e-4)
    assert float(m["psnr"]) == pytest.approx(40.0)
    assert float(m["snr"]) == pytest.approx(10 * math.log10(0.25 / 1e-4))
    mu = (2 * 0.51 + 0.49) / 3
    assert float(m["mse_mean"]) == pytest.approx((mu - 0.5) ** 2)


def test_calibrated_gaussian_samples():
    g = torch.Generator().manual_seed(0)
    B, S, N = 4, 400, 64
    mu = torch.rand(B, N, N, generator=g, dtype=torch.float64)
    sd = 0.05 + 0.1 * torch.rand(B, N, N, generator=g, dtype=torch.float64)
    truth = mu + sd * torch.randn(B, N, N, generator=g, dtype=torch.float64)
    samples = mu[:, None] + sd[:, None] * torch.randn(B, S, N, N, generator=g, dtype=torch.float64)
    m = metrics.all_metrics(samples, truth)
    assert m["sre"].shape == (B,)
    assert torch.allclose(m["sre"], torch.ones(B, dtype=torch.float64), atol=0.1)  # std of the mean ≈ 0.022
    assert torch.allclose(m["cov68"], torch.full((B,), 0.6827, dtype=torch.float64), atol=0.03)
    assert torch.allclose(m["cov95"], torch.full((B,), 0.9545, dtype=torch.float64), atol=0.02)
    assert torch.allclose(m["sre_paper"], torch.full((B,), 2.0, dtype=torch.float64), atol=0.1)


def test_overconfident_samples_have_large_sre():
    g = torch.Generator().manual_seed(1)
    truth = torch.rand(2, 16, 16, generator=g)
    samples = truth[:, None] + 0.1 + 0.01 * torch.randn(2, 50, 16, 16, generator=g)
    m = metrics.all_metrics(samples, truth)
    assert bool((m["sre"] > 50).all()) and bool((m["cov95"] < 0.05).all())


def test_single_sample_and_bad_shapes():
    truth = torch.zeros(2, 4, 4)
    m = metrics.all_metrics(torch.ones(2, 1, 4, 4), truth)
    assert float(m["mse"][0]) == 1.0 and bool(torch.isnan(m["sre"]).all())
    with pytest.raises(ValueError, match="2 samples"):
        metrics.sre(torch.ones(2, 1, 4, 4), truth)
    with pytest.raises(ValueError, match="samples"):
        metrics.mse(torch.ones(2, 4, 4), truth)
    with pytest.raises(ValueError, match="samples"):
        metrics.mse(torch.ones(3, 2, 4, 4), truth)


def test_dynamic_range_and_faint_flux_closed_form():
    from ddrm.inverse.metrics import dynamic_range

    ref = torch.zeros(32, 32, dtype=torch.float64)
    ref[16, 16], ref[16, 17:20] = 1.0, 0.03  # a core and a 3 % jet
    img = ref.clone()
    img[0, :] = 0.002  # off-source noise on one row: rms over the 28 off-source rows' pixels
    out = dynamic_range(img, ref)
    off = (32 * 32 - 4)
    assert out["n_faint_pixels"] == 3 and out["faint_flux"] == pytest.approx(0.09)
    assert out["off_source_rms"] == pytest.approx((32 * 0.002 ** 2 / off) ** 0.5)
    assert out["dynamic_range"] == pytest.approx(1.0 / out["off_source_rms"])

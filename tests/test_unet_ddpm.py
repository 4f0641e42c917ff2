import pytest
import torch

from ddrm.diffusion.ddpm import EMA, EpsDenoiser, ddpm_loss, sample_ancestral, sample_ddim
from ddrm.diffusion.schedule import Schedule
from ddrm.diffusion.unet import PixelNorm, UNet, UNetConfig, unet_preset
from ddrm.inverse.priors import GaussianFourierPrior

SCH = Schedule()


@pytest.mark.parametrize("N", [7, 33, 64])
def test_unet_any_size(N):
    torch.manual_seed(0)
    net = UNet(unet_preset("tiny"))
    x = torch.randn(2, 1, N, N)
    out = net(x, torch.tensor([0, 999]))
    assert out.shape == x.shape


def test_unet_is_time_conditioned_and_presets():
    torch.manual_seed(0)
    net = UNet(UNetConfig(base_channels=8, channel_mult=(1, 2), num_res_blocks=1, attention_levels=(1,), norm_groups=4))
    for p in net.parameters():  # move off the zero init so the output depends on t
        torch.nn.init.normal_(p, std=0.05)
    x = torch.randn(1, 1, 16, 16)
    assert not torch.allclose(net(x, torch.tensor([1])), net(x, torch.tensor([900])))
    n_tiny = sum(p.numel() for p in UNet(unet_preset("tiny")).parameters())
    n_paper = sum(p.numel() for p in UNet(unet_preset("paper")).parameters())
    assert n_tiny < 1_000_000 and 30e6 < n_paper < 70e6
    assert unet_preset("paper").channels == (32, 64, 128, 256, 512)
    cfg = unet_preset("tiny")
    assert UNetConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown U-Net preset"):
        unet_preset("huge")
    with pytest.raises(ValueError, match="norm_groups"):
        UNetConfig(base_channels=12, norm_groups=8)


def test_loss_goes_down_on_a_tiny_problem():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    x0 = torch.zeros(8, 1, 16, 16)
    x0[:, :, 6:10, 6:10] = 1.0
    x0 = x0 * 2 - 1
    net = UNet(UNetConfig(base_channels=8, channel_mult=(1, 2), num_res_blocks=1, attention_levels=(), norm_groups=4))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        loss = ddpm_loss(net, x0, SCH, g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-10:]) / 10 < 0.6 * sum(losses[:5]) / 5


def test_ddpm_loss_uses_the_given_timesteps_exactly():
    """With t given, the loss is ‖ε - ε_θ(√ᾱ_t x₀ + √(1-ᾱ_t) ε, t)‖² at those t: a model returning
    (x_t - √ᾱ_t x₀)/√(1-ᾱ_t) for the known x₀ (the exact ε) scores 0 there and not at other t."""
    x0 = torch.linspace(-1, 1, 2 * 16, dtype=torch.float64).reshape(2, 1, 4, 4)
    t = torch.tensor([1, 700])

    class Oracle(torch.nn.Module):
        def forward(self, xt, tt):
            ab = SCH.alpha_bar[t].to(xt).reshape(-1, 1, 1, 1)  # the oracle knows the requested t
            assert torch.equal(tt, t)
            return (xt - ab.sqrt() * x0) / (1 - ab).sqrt()

    assert ddpm_loss(Oracle(), x0, SCH, torch.Generator().manual_seed(0), t=t) < 1e-20
    with pytest.raises(AssertionError):
        ddpm_loss(Oracle(), x0, SCH, torch.Generator().manual_seed(0))  # uniform draws are not these t


def test_ema_update_is_exact():
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    ema = EMA(a, decay=0.75)
    before = ema.model.weight.clone()
    ema.update(b)
    assert torch.allclose(ema.model.weight, 0.75 * before + 0.25 * b.weight)
    with pytest.raises(ValueError):
        EMA(a, decay=1.0)


def test_eps_denoiser_inverts_the_forward_process():
    x0 = torch.rand(3, 1, 8, 8, dtype=torch.float64) * 2 - 1
    t = torch.tensor([0, 400, 999])
    ab = SCH.alpha_bar[t].reshape(-1, 1, 1, 1)
    eps = torch.randn_like(x0)
    xt = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
    oracle = lambda x, tt: eps  # a perfect ε-network for this x_t
    assert torch.allclose(EpsDenoiser(oracle, SCH, clip=False)(xt, t), x0, atol=1e-6)


def test_eps_denoiser_returns_on_the_inputs_device_and_dtype():
    """The network runs in its own dtype (float32 weights); x̂_0 comes back in x_t's (float64), equal to
    the float32 evaluation cast up."""
    net = UNet(UNetConfig(base_channels=8, channel_mult=(1, 2), num_res_blocks=1, attention_levels=(1,), norm_groups=4)).eval()
    den = EpsDenoiser(net, SCH)
    xt = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    t = torch.tensor([10, 500])
    out = den(xt, t)
    assert out.dtype == torch.float64 and out.device == xt.device and den.device == torch.device("cpu")
    torch.testing.assert_close(out, den(xt.float(), t).double(), rtol=0, atol=1e-6)


@pytest.mark.parametrize("sampler", ["ddim", "ancestral"])
def test_unconditional_samplers_reproduce_a_gaussian_prior(sampler):
    N, n = 8, 1500
    prior = GaussianFourierPrior.power_law(N, SCH, pixel_variance=1.0, k0=3.0, slope=1.0)
    g = torch.Generator().manual_seed(0)
    x_T = torch.randn(n, 1, N, N, generator=g, dtype=torch.float64)
    if sampler == "ddim":
        x = sample_ddim(prior, x_T, SCH, K=200)
    else:
        x = sample_ancestral(prior, x_T, SCH, g)
    ratio = prior.basis.Vt(x[:, 0]).var(dim=0) / prior.lam
    assert float(ratio.mean()) == pytest.approx(1.0, abs=0.03)


def test_the_channel_norm_normalises_each_pixel_over_its_channels_in_any_layout():
    torch.manual_seed(0)
    norm = PixelNorm(6)
    with torch.no_grad():
        norm.weight.copy_(torch.linspace(0.5, 2.0, 6))
        norm.bias.copy_(torch.linspace(-1.0, 1.0, 6))
    x = torch.randn(3, 6, 5, 7) * 4 + 2
    mean = x.mean(dim=1, keepdim=True)
    var = x.var(dim=1, keepdim=True, unbiased=False)
    expected = (x - mean) / torch.sqrt(var + norm.eps) * norm.weight[:, None, None] + norm.bias[:, None, None]
    torch.testing.assert_close(norm(x), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(norm(x.contiguous(memory_format=torch.channels_last)), expected, rtol=1e-5, atol=1e-5)
    y = norm(x)
    y.sum().backward()  # trainable through the fused kernel
    assert norm.weight.grad is not None and torch.isfinite(norm.weight.grad).all()

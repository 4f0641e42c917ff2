"""The denoiser network: a fully convolutional U-Net with FiLM time conditioning.

ε_θ(x_t, t): (B, C, N, N) images and (B,) integer timesteps -> (B, C, N, N).
Any N works: the input is reflect-padded to a multiple of 2^(levels-1) and cropped back.
Architecture as in Ho et al. (2020) / Nichol & Dhariwal (2021): per level
``num_res_blocks`` residual blocks (GroupNorm, SiLU, conv; the time embedding gives a
per-channel scale and shift, "FiLM"), optional self-attention, strided down-sampling,
nearest up-sampling and skip connections.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ddrm.config import Config

NORMS = ("group", "pixel")


@dataclass(frozen=True)
class UNetConfig(Config):
    """Width, depth and attention of the U-Net. ``attention_levels`` index ``channel_mult``.

    ``norm``: ``"group"`` normalises over channel groups *and the whole image*, so its statistics
    depend on the field size and on how much of it is empty sky; ``"pixel"`` normalises each
    pixel's channel vector alone (LayerNorm over C). With ``mid_attention=False`` and no attention
    levels the network's output at a pixel is a function of its receptive field only, at any N.
    """

    in_channels: int = 1
    base_channels: int = 32
    channel_mult: tuple[int, ...] = (1, 2, 4, 8, 16)
    num_res_blocks: int = 2
    attention_levels: tuple[int, ...] = (3,)
    num_heads: int = 4
    norm_groups: int = 8
    dropout: float = 0.0
    norm: str = "group"
    mid_attention: bool = True

    def __post_init__(self) -> None:
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {self.norm!r}")
        for c in self.channels:
            if c % self.norm_groups:
                raise ValueError(f"norm_groups={self.norm_groups} must divide every width {self.channels}")
        if any(not 0 <= a < len(self.channel_mult) for a in self.attention_levels):
            raise ValueError("attention_levels must index channel_mult")

    @property
    def channels(self) -> tuple[int, ...]:
        return tuple(self.base_channels * m for m in self.channel_mult)

    @property
    def multiple(self) -> int:
        """Spatial size the input is padded to a multiple of."""
        return 2 ** (len(self.channel_mult) - 1)


UNET_PRESETS: dict[str, UNetConfig] = {
    # 0.29 M parameters: trains in minutes on a 2-core CPU at N = 64.
    "tiny": UNetConfig(base_channels=16, channel_mult=(1, 2, 2), num_res_blocks=1,
                       attention_levels=(), norm_groups=8),
    # Widths 32..512, one res-block a level down and two up, attention at 1/8 resolution:
    # 40.6 M parameters, the reference's "about 40 M" (2 blocks a level would give 58 M).
    "paper": UNetConfig(base_channels=32, channel_mult=(1, 2, 4, 8, 16), num_res_blocks=1,
                        attention_levels=(3,), norm_groups=16),
}
# The shipped FIRST prior: 1.17 M parameters, size-independent (pixel norm, no attention), five
# levels for a wide receptive field; chosen on valid PSNR (benchmarks/prior_candidates.py).
UNET_PRESETS["first"] = UNetConfig(base_channels=16, channel_mult=(1, 2, 2, 4, 4), num_res_blocks=1,
                                   attention_levels=(), norm="pixel", mid_attention=False)


def unet_preset(name: str) -> UNetConfig:
    try:
        return UNET_PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown U-Net preset {name!r}; known: {sorted(UNET_PRESETS)}") from None


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of timesteps t (B,) -> (B, dim) (Vaswani et al. 2017)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


class PixelNorm(nn.Module):
    """LayerNorm over channels at each pixel: (x - mean_C x) / √(var_C x + ε) · w + b. (B, C, H, W)."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight, self.bias, self.eps = nn.Parameter(torch.ones(channels)), nn.Parameter(torch.zeros(channels)), eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # one fused kernel over the channels-last view (the output keeps that layout; convolutions take it)
        return F.layer_norm(x.permute(0, 2, 3, 1), x.shape[1:2], self.weight, self.bias, self.eps).permute(0, 3, 1, 2)


def make_norm(kind: str, channels: int, groups: int) -> nn.Module:
    return PixelNorm(channels) if kind == "pixel" else nn.GroupNorm(groups, channels)


class ResBlock(nn.Module):
    """h = conv(SiLU(GN(x))); h = GN(h)(1 + scale(t)) + shift(t); out = skip(x) + conv(SiLU(h))."""

    def __init__(self, cin: int, cout: int, temb: int, groups: int, dropout: float, norm: str = "group") -> None:
        super().__init__()
        self.norm1, self.conv1 = make_norm(norm, cin, groups), nn.Conv2d(cin, cout, 3, padding=1)
        self.film = nn.Linear(temb, 2 * cout)
        self.norm2, self.drop = make_norm(norm, cout, groups), nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.film(emb)[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        return self.skip(x) + self.conv2(self.drop(F.silu(h)))


class Attention(nn.Module):
    """Multi-head self-attention over the H·W positions, residual."""

    def __init__(self, ch: int, heads: int, groups: int, norm: str = "group") -> None:
        super().__init__()
        self.norm, self.heads = make_norm(norm, ch, groups), heads
        self.qkv, self.out = nn.Conv2d(ch, 3 * ch, 1), nn.Conv2d(ch, ch, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        B, C, H, W = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(B, 3, self.heads, C // self.heads, H * W).unbind(1)
        h = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        return x + self.out(h.transpose(-1, -2).reshape(B, C, H, W))


class UNet(nn.Module):
    """ε-prediction U-Net; ``forward(x (B,C,N,N), t (B,)) -> (B,C,N,N)``."""

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        self.config = cfg = config
        ch, g, temb = cfg.channels, cfg.norm_groups, 4 * cfg.base_channels
        self.temb = nn.Sequential(nn.Linear(cfg.base_channels, temb), nn.SiLU(), nn.Linear(temb, temb))
        self.stem = nn.Conv2d(cfg.in_channels, ch[0], 3, padding=1)
        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        skips, cur = [ch[0]], ch[0]
        for lvl, c in enumerate(ch):
            for _ in range(cfg.num_res_blocks):
                self.down.append(self._block(cur, c, lvl))
                cur = c
                skips.append(cur)
            if lvl < len(ch) - 1:
                self.downsample.append(nn.Conv2d(cur, cur, 3, stride=2, padding=1))
                skips.append(cur)
        mid_attention = [Attention(cur, cfg.num_heads, g, cfg.norm)] if cfg.mid_attention else []
        self.mid = nn.ModuleList([ResBlock(cur, cur, temb, g, cfg.dropout, cfg.norm), *mid_attention,
                                  ResBlock(cur, cur, temb, g, cfg.dropout, cfg.norm)])
        self.up, self.upsample = nn.ModuleList(), nn.ModuleList()
        for lvl in reversed(range(len(ch))):
            for _ in range(cfg.num_res_blocks + 1):
                self.up.append(self._block(cur + skips.pop(), ch[lvl], lvl))
                cur = ch[lvl]
            if lvl > 0:
                self.upsample.append(nn.Conv2d(cur, cur, 3, padding=1))
        self.head = nn.Sequential(make_norm(cfg.norm, cur, g), nn.SiLU(), nn.Conv2d(cur, cfg.in_channels, 3, padding=1))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def _block(self, cin: int, cout: int, lvl: int) -> nn.ModuleList:
        cfg = self.config
        layers = [ResBlock(cin, cout, 4 * cfg.base_channels, cfg.norm_groups, cfg.dropout, cfg.norm)]
        if lvl in cfg.attention_levels:
            layers.append(Attention(cout, cfg.num_heads, cfg.norm_groups, cfg.norm))
        return nn.ModuleList(layers)

    @staticmethod
    def _run(block: nn.ModuleList, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        for layer in block:
            h = layer(h, emb)
        return h

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.config.in_channels:
            raise ValueError(f"expected (B, {self.config.in_channels}, N, N), got {tuple(x.shape)}")
        n_h, n_w = x.shape[-2:]
        m = self.config.multiple
        pad_h, pad_w = (-n_h) % m, (-n_w) % m
        mode = "reflect" if pad_h < n_h and pad_w < n_w else "replicate"
        h = F.pad(x, (0, pad_w, 0, pad_h), mode=mode) if pad_h or pad_w else x
        emb = self.temb(timestep_embedding(t.expand(x.shape[0]), self.config.base_channels))
        h = self.stem(h)
        hs, blocks, downs = [h], iter(self.down), iter(self.downsample)
        for lvl in range(len(self.config.channels)):
            for _ in range(self.config.num_res_blocks):
                h = self._run(next(blocks), h, emb)
                hs.append(h)
            if lvl < len(self.config.channels) - 1:
                h = next(downs)(h)
                hs.append(h)
        for layer in self.mid:
            h = layer(h, emb)
        blocks, ups = iter(self.up), iter(self.upsample)
        for lvl in reversed(range(len(self.config.channels))):
            for _ in range(self.config.num_res_blocks + 1):
                h = self._run(next(blocks), torch.cat([h, hs.pop()], dim=1), emb)
            if lvl > 0:
                h = next(ups)(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.head(h)[..., :n_h, :n_w]

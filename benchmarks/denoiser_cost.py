"""Milliseconds per image per network evaluation of the shipped FIRST prior's U-Net at N = 150,
at batch 1, 8 and 32: on a CPU larger batches can be slower per image, so the CPU
actors' batch size follows this measurement. One process, 2 threads, no_grad, median of 5.

Three variants in the same run: the prior as ``load_prior`` gives it (the channel norm one fused
``layer_norm``, the network channels-last), the same in the default contiguous layout, and stop 46's
six-pass channel norm (mean, centre, square, mean, rsqrt, affine) in the default layout. Their outputs
agree to float32 rounding (printed).

Last line: ``ms_per_image_b1=<x> ms_per_image_b8=<x> ms_per_image_b32=<x> speedup_b8=<unfused / as loaded>``.
"""

from __future__ import annotations

import copy
import statistics
import time
from contextlib import contextmanager

import torch

from ddrm.diffusion import unet
from stores.checkpoints import load_prior

N, BATCHES, REPEATS = 150, (1, 8, 32), 5


def six_pass_norm(self, x: torch.Tensor) -> torch.Tensor:
    mean = x.mean(dim=1, keepdim=True)
    var = (x - mean).square().mean(dim=1, keepdim=True)
    return (x - mean) * torch.rsqrt(var + self.eps) * self.weight[:, None, None] + self.bias[:, None, None]


@contextmanager
def unfused():
    fused = unet.PixelNorm.forward
    unet.PixelNorm.forward = six_pass_norm
    try:
        yield
    finally:
        unet.PixelNorm.forward = fused


def ms_per_image(model: torch.nn.Module, b: int) -> tuple[float, torch.Tensor]:
    x, t = torch.randn(b, 1, N, N, generator=torch.Generator().manual_seed(b)), torch.full((b,), 500)
    with torch.no_grad():
        out = model(x, t)  # warm-up
        times = []
        for _ in range(REPEATS):
            t0 = time.perf_counter()
            model(x, t)
            times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times) / b, out


def main() -> None:
    torch.set_num_threads(2)
    loaded = load_prior("first", torch.device("cpu")).model
    contiguous = copy.deepcopy(loaded).to(memory_format=torch.contiguous_format)
    out = {}
    for b in BATCHES:
        fast, y = ms_per_image(loaded, b)
        plain, _ = ms_per_image(contiguous, b)
        with unfused():
            old, y_old = ms_per_image(contiguous, b)
        out[b] = (fast, old)
        print(f"batch {b}: {fast:.1f} ms per image as loaded, {plain:.1f} contiguous, {old:.1f} with the six-pass "
              f"norm ({old / fast:.2f}x); outputs differ by {float((y - y_old).abs().max()):.1e} "
              f"(max |output| {float(y.abs().max()):.2f})")
    print(" ".join(f"ms_per_image_b{b}={out[b][0]:.1f}" for b in BATCHES) + f" speedup_b8={out[8][1] / out[8][0]:.2f}")


if __name__ == "__main__":
    main()

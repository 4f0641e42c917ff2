"""DDRM overhead and batching on the tiny U-Net (not a test).

1. DDRM with K steps (B=4 observations x S=4 samples, N=64) against K bare denoiser
   forwards at the same batch of 16: overhead ratio = t_ddrm / t_forwards (goal <= 1.05).
2. The batched call (B=4 x S=4) against a loop of 4 calls with one observation (S=4):
   batched_speedup = t_loop / t_batched (goal >= 1.0).
Last line: ``ddrm_overhead_ratio=<x.xxx> batched_speedup=<x.xx>``.
"""

from __future__ import annotations

import time
import warnings

import torch

from ddrm import EpsDenoiser, FourierSamplingOperator, Schedule, UNet, ddrm_sample, make_generators, unet_preset

N, K, B, S, REPEATS = 64, 50, 4, 4, 3


def best_of_interleaved(*fns, repeats: int = REPEATS) -> list[float]:
    """Min time of each fn over ``repeats`` rounds, the fns interleaved so drift hits all alike."""
    for fn in fns:
        fn()  # warm-up
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t0)
    return best


def main() -> None:
    torch.manual_seed(0)
    schedule = Schedule()
    net = UNet(unet_preset("tiny")).eval()
    for p in net.parameters():  # a non-trivial (random) network: same cost as a trained one
        torch.nn.init.normal_(p, std=0.02)
    denoiser = EpsDenoiser(net, schedule)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        op = FourierSamplingOperator(torch.rand(N, N, generator=torch.Generator().manual_seed(1)) < 0.15)
    y = op.H(torch.rand(B, N, N) * 2 - 1).float()
    x = torch.randn(B * S, 1, N, N)
    t = torch.full((B * S,), 500, dtype=torch.long)

    def forwards():
        for _ in range(K):
            denoiser(x, t)

    def batched():
        ddrm_sample(denoiser, y, op, generators=make_generators(range(B)), sigma_y=0.01, K=K, S=S)

    def loop():
        for b in range(B):
            ddrm_sample(denoiser, y[b:b + 1], op, generators=make_generators([b]), sigma_y=0.01, K=K, S=S)

    t_fwd, t_batched, t_loop = best_of_interleaved(forwards, batched, loop)
    print(f"threads={torch.get_num_threads()} N={N} K={K} B={B} S={S}")
    print(f"{K} bare forwards at batch {B * S}: {t_fwd:.3f} s ({t_fwd / K / (B * S) * 1e3:.2f} ms/image)")
    print(f"DDRM batched (B={B} x S={S}): {t_batched:.3f} s")
    print(f"DDRM loop ({B} x [S={S}]): {t_loop:.3f} s")
    print(f"ddrm_overhead_ratio={t_batched / t_fwd:.3f} batched_speedup={t_loop / t_batched:.2f}")


if __name__ == "__main__":
    main()

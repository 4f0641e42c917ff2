"""Network evaluations and seconds per observation of DDRM and split Gibbs with the shipped FIRST
prior, at N = 64 and N = 150 (the paper's VLA mask at 150, a random 30 % Fourier mask at 64), K = 50,
S samples per observation, B observations per call. Needs torch and this repository only.

Last line: ``ddrm_s_per_obs=<x> new_s_per_obs=<x> nfe_ratio=<x>`` (N = 150).
"""

from __future__ import annotations

import argparse
import warnings

import torch

from ddrm import DDRMConfig, SplitGibbsConfig
from ddrm.inverse.operators import FourierSamplingOperator
from ddrm.radio.observe import paper_operator
from ddrm.radio.pipeline import posterior_of_stack
from stores.checkpoints import load_prior


def operator(N: int):
    if N == 150:
        return paper_operator("vla")
    g = torch.Generator().manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return FourierSamplingOperator(torch.rand(N, N, generator=g) < 0.3)


def seconds_per_obs(sampler, N: int, K: int, S: int, B: int, device: torch.device) -> float:
    """Sampling seconds per observation of an empty sky, B observations per call, after a K = 2 warm-up
    (``ddrm.radio.pipeline.posterior_of_stack``, which synchronises the device)."""
    prior, op, empty = load_prior("first", device), operator(N), torch.zeros(B, N, N)
    posterior_of_stack(prior, empty, op, 0.02, sampler, K=2, S=S, batch=B, device=device)  # warm-up
    return posterior_of_stack(prior, empty, op, 0.02, sampler, K=K, S=S, batch=B, device=device).seconds


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--K", type=int, default=50)
    p.add_argument("--S", type=int, default=16)
    p.add_argument("--B", type=int, default=1)
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 150])
    args = p.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(f"device {torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'}, K={args.K}, S={args.S}, "
          f"B={args.B}, threads={torch.get_num_threads()}")
    ddrm, gibbs = DDRMConfig(), SplitGibbsConfig()
    out = {}
    for N in args.sizes:
        for sampler in (ddrm, gibbs):
            out[N, sampler.name] = seconds_per_obs(sampler, N, args.K, args.S, args.B, device)
            print(f"N={N} {sampler.name}: nfe per sample {sampler.nfe(args.K)}, {out[N, sampler.name]:.2f} s per "
                  f"observation", flush=True)
    N = max(args.sizes)
    print(f"ddrm_s_per_obs={out[N, 'ddrm']:.2f} new_s_per_obs={out[N, 'gibbs']:.2f} "
          f"nfe_ratio={gibbs.nfe(args.K) / ddrm.nfe(args.K):.1f}")


if __name__ == "__main__":
    main()

"""The gains as a block of the exact chain: self-calibration inside the posterior's split-Gibbs sweeps.

The exact refinement (``exact_gibbs.refine``) alternates a prior step z = D(x, ρ) + ρε and the exact
likelihood step x | z, y. Here the antenna gains g are a third block, solved before every ``every``-th
sweep's likelihood step and before the last sweep's mean:

    image             x̂ = the likelihood step's mean of the samples' mean z̄ by the discrepancy principle
                      (``exact_gibbs.discrepancy_mean``: the image that fits the data as the last sweep will)
    gain block        ĝ = argmin_g Σ_j w_j |V_j - g_p g_q* M_j(x̂)|² + Σ_p (ln|g_p|)²/σ_a²
                      (``radio.gains``, the raw data V), then y ← V / (g_p g_q*), w ← w |g_p g_q*|²
    likelihood step   x | z, y(ĝ)   (the likelihood rebuilt for the corrected data)

so the gains follow the image within one chain (ρ from ρ_max to ρ_min) instead of between whole chains,
and the last sweep's mean is taken under the gains solved against it. The image the gains are solved
against is the discrepancy mean, not the denoised mean z̄ (smooth at ρ_max), and the block runs every
``every``-th sweep, not every sweep (where the gains chase the image); the measurements behind both choices
are in docs/measurements.md.

By default the block is a conditional mode (iterated conditional modes): one ĝ for every sample, so the
image's posterior std does not include the gains' uncertainty. With ``draw`` it is a Gibbs block: each
sample s gets its own gains, g_s ~ N(ĝ_s, Σ_s) in (ln|g|, φ), the Laplace posterior of the solve against
x̂_s (the likelihood step's mean of z_s at the same ρ_f; ``GainSolution.sigma``, correlations ignored),
and its own data term b_s = Re Aᴴ W' y'(g_s). The Gram operator and the noise stay those of the mode ĝ:
exact for phase-only gains (|g_p g_q*| = 1), first-order for amplitudes.

Convergence (the rule): once two successive blocks of the same mode differ by less than ``gain_tol``
(rms |ĝ_new/ĝ_old - 1|) with the image's χ² against the corrected data changing by less than ``tol`` of
itself, the gains are frozen for the rest of the chain; at most ``rounds`` blocks. Pure: arrays and tensors in.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Sequence

import numpy as np
import torch

from ddrm.diffusion.ddpm import Denoiser
from ddrm.radio.exact_gibbs import ExactRefineConfig, discrepancy_mean, refine
from ddrm.radio.gains import GainSolution, interval_bounds
from ddrm.radio.gridding import ARCSEC
from ddrm.radio.likelihood import VisibilityLikelihood, likelihood_step
from ddrm.radio.nufft import degrid
from ddrm.radio.selfcal import SelfCalTrace, solve_model
from ddrm.radio.visibilities import Visibilities

LikelihoodOf = Callable[[Visibilities], VisibilityLikelihood]


class GainBlock:
    """The gain block of one chain: the raw on-field ``data``, the likelihood of the data corrected by the
    current solution (``trace.solution``, which it starts from; ``mode_like``) and the one the chain steps with
    (``like``: the same, or with each sample's data term if ``draw``), the chain's ``exact`` config and the
    rule above. ``like_of(data)`` builds the likelihood of corrected data; F (Jy/pixel) maps model space to
    the sky; ``first_round`` numbers the blocks for ``SelfCalConfig.gain_config`` (the mode of each);
    ``generators`` draw the gains. ``update`` replaces ``trace`` with a new one (``SelfCalTrace.advanced``)."""

    def __init__(self, data: Visibilities, like_of: LikelihoodOf, trace: SelfCalTrace, exact: ExactRefineConfig,
                 pixel_scale_arcsec: float, flux_scale: float, first_round: int,
                 generators: Sequence[torch.Generator] = ()) -> None:
        if trace.solution is None:
            raise ValueError("the gain block starts from a solution (the CLEAN stage's)")
        if trace.config.draw and not generators:
            raise ValueError("drawing the gains needs a generator")
        self.data, self.like_of, self.trace, self.exact = data, like_of, trace, exact
        self.scale, self.F, self.round, self.generators = pixel_scale_arcsec, flux_scale, first_round, generators
        self.bounds = interval_bounds(data.time_jd, data.interval)
        self.mode_like = self.like = like_of(data.corrected(trace.solution))
        self.sweeps, self.solves, self.frozen, self.previous = 0, 0, False, None

    def due(self, sweep: int, last: bool) -> bool:
        """Whether sweep ``sweep`` solves the gains: every ``every``-th and the last, until frozen."""
        return not self.frozen and self.solves < self.trace.config.rounds and \
            (last or sweep % self.trace.config.every == 0)

    def image(self, z: torch.Tensor, rho: float) -> tuple[torch.Tensor, float]:
        """(x̂ (1, 1, N, N) model space, ρ_f): the discrepancy mean of z (1, S, N, N)'s mean over S under the
        mode's likelihood (the plain mean at ρ_f = ρ where the chain has no ``chi2_target``)."""
        zbar = z.double().mean(1, keepdim=True)
        if self.exact.chi2_target is None:
            return likelihood_step(self.mode_like, zbar, rho, (), sample=False), rho
        return discrepancy_mean(self.mode_like, zbar, rho, max(rho, self.exact.rho_max), self.exact.chi2_target)

    def model(self, x: torch.Tensor) -> np.ndarray:
        """The visibilities (n,) of a model-space image x (N, N)."""
        image = self.F * (x.double() + 1) / 2
        return np.asarray(degrid(uv=self.data.uv, image=image, pixel_size=self.scale * ARCSEC))

    def solve(self, model: np.ndarray, round_: int) -> GainSolution:
        """The raw data's gains against model visibilities (n,)."""
        return solve_model(self.data, model, self.trace.config.gain_config(round_), self.bounds)

    def update(self, z: torch.Tensor, rho: float, last: bool = False) -> None:
        """Count the sweep; if due, solve the raw data's gains against ``image(z, ρ)``, rebuild the likelihood
        (with each sample's own drawn gains if ``draw``), apply the rule."""
        sweep, self.sweeps = self.sweeps, self.sweeps + 1
        if not self.due(sweep, last):
            return
        (x, rho_f), round_, config = self.image(z, rho), self.round + self.solves, self.trace.config
        each = likelihood_step(self.mode_like, z.double(), rho_f, (), sample=False)[0] if config.draw else None
        model = self.model(x[0, 0])
        trace, value, settled, fixed = self.trace.advanced("chain", round_, self.data, model,
                                                           self.solve(model, round_), self.previous, rho=rho)
        self.mode_like = self.like = self.like_of(fixed)
        if each is not None:  # x̂_s, computed before the likelihood changed (their mean is x̂)
            self.like = replace(self.mode_like, b=torch.stack([self.like_of(self.data.corrected(
                drawn(self.solve(self.model(xs), round_), self.generators))).b for xs in each]))
        self.solves += 1
        self.frozen = settled
        self.trace, self.previous = replace(trace, converged=settled), value


def drawn(sol: GainSolution, generators: Sequence[torch.Generator]) -> GainSolution:
    """The solution with each solved gain drawn from its Laplace posterior: ln g = ln ĝ + σ_a ε₁ + i σ_φ ε₂
    (``GainSolution.sigma``, independent per gain: the normal matrix's correlations are ignored)."""
    if sol.sigma is None:
        return sol
    eps = torch.randn((2,) + sol.gains.shape, generator=generators[0], dtype=torch.float64).numpy()
    step = np.where(sol.solved, sol.sigma[..., 0] * eps[0] + 1j * sol.sigma[..., 1] * eps[1], 0)
    return replace(sol, gains=sol.gains * np.exp(step))


def calibrating_refine(prior: Denoiser, x: torch.Tensor, block: GainBlock,
                       generators: Sequence[torch.Generator]) -> tuple[torch.Tensor, SelfCalTrace]:
    """Samples x (1, S, N, N) model space -> ((1, S, N, N), the trace) by the exact chain of ``block.exact``
    with the gain block (module docstring); the last sweep's mean at the discrepancy principle's ρ_f (of the
    mode's likelihood) where ``chi2_target`` is set. The trace ends with the solution the returned samples were
    refined under (each sample under its own draw around it if ``draw``)."""
    config = block.exact

    def step(z: torch.Tensor, rho: float, sample: bool) -> torch.Tensor:
        block.update(z, rho)
        return likelihood_step(block.like, z, rho, generators, sample=sample)

    def final(z: torch.Tensor, rho: float) -> torch.Tensor:
        block.update(z, rho, last=True)
        return likelihood_step(block.like, z, block.image(z, rho)[1], (), sample=False)  # ρ_f under the last gains

    return refine(prior, x, step, config, generators, final), block.trace

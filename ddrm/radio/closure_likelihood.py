"""The likelihood of closure quantities: a data term that antenna gains cannot corrupt, and its step.

For an image I (N, N) Jy/pixel, the model visibilities V = A I at the closures' own (u, v) (A the degridder,
``nufft``), and the non-redundant closures of ``closure.closures`` (triangles with signs s, quadrangles
ab, cd, ac, bd), the negative log-likelihood is

    L(I) = Σ_t κ_t (1 - cos(ψ_t - Σ_k s_tk arg V_tk))                       closure phases, von Mises κ = 1/σ_ψ²
         + ½ Σ_q (ln A_q - ln|V_ab| - ln|V_cd| + ln|V_ac| + ln|V_bd|)² / σ_q²   log closure amplitudes
         + ½ (Σ I - F_tot)² / σ_F²                                           total flux (if given)
         + ½ |Σ I r / Σ I|² / σ_c²                                           centroid r at the centre (if σ_c)

Closures do not see where the source is, so without the centroid term samples drift apart and their mean
smears (ehtim's closure imaging carries the same term).
so that χ²_cphase = 2 L_phase / n_T and χ²_logcamp = 2 L_logamp / n_Q (ehtim's definitions, as
``closure.Closures``). L is invariant under any V_pq -> g_p g_q* V_pq. Its gradient comes through the
NUFFT: for real I, ∂L/∂I = Re(Aᴴ g) with g = ∂L/∂Re V + i ∂L/∂Im V (``Degrid``, an autograd function).

The step x | z of split Gibbs under this likelihood, x in model space (I = F (x + 1)/2), is not Gaussian.
``closure_step`` draws it by randomise-then-optimise: the minimiser of

    ‖x - z̃‖² / (2ρ²) + L̃(F (x + 1)/2),      z̃ = z + ρ ξ,  L̃ with each datum perturbed by its σ,

(exact for a linear-Gaussian model; for closures a first-order draw) by L-BFGS from z. Without
``sample``, z and the data are not perturbed (the step's mode).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch

from ddrm.inverse.samplers import fill_normal
from ddrm.radio.closure import Closures, pooled
from ddrm.radio.gridding import ARCSEC
from ddrm.radio.nufft import adjoint, degrid


class Degrid(torch.autograd.Function):
    """V (B, n) complex128 = A I for images I (B, N, N) float64 (Jy/pixel) at uv (n, 2); backward Re(Aᴴ g)."""

    @staticmethod
    def forward(ctx, images: torch.Tensor, uv: np.ndarray, pixel_scale_arcsec: float) -> torch.Tensor:
        ctx.uv, ctx.scale, ctx.N = uv, pixel_scale_arcsec, images.shape[-1]
        return torch.from_numpy(np.atleast_2d(degrid(uv=uv, image=images.detach(), pixel_size=pixel_scale_arcsec * ARCSEC))).to(images.device)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        g = grad.detach().cpu().numpy()
        out = torch.stack([adjoint(uv=ctx.uv, vis=one, npix=ctx.N, pixel_size=ctx.scale * ARCSEC) for one in g]).to(grad.device)
        return out, None, None


@dataclass(frozen=True, eq=False)
class ClosureLikelihood:
    """The closures' visibilities uv (m, 2) wavelengths; triangles (T, 3) and quadrangles (Q, 4) as indices
    into them, signs (T, 3); data ψ (T,) rad, ln A (Q,) with their σ; the total flux F_tot (Jy, NaN: no
    flux term) and its σ_F; the image's N and pixel scale."""

    uv: np.ndarray
    triangles: torch.Tensor
    signs: torch.Tensor
    phase: torch.Tensor
    sigma_phase: torch.Tensor
    quadrangles: torch.Tensor
    logamp: torch.Tensor
    sigma_logamp: torch.Tensor
    total_flux: float
    sigma_flux: float
    N: int
    pixel_scale_arcsec: float
    centroid_sigma: float = float("inf")  # pixels

    @classmethod
    def build(cls, closures: Closures, uv: np.ndarray, *, N: int, pixel_scale_arcsec: float,
              total_flux: float = float("nan"), sigma_flux: float = float("inf"),
              centroid_sigma: float = float("inf")) -> "ClosureLikelihood":
        """From closures indexing visibilities at uv (n, 2): only the m visibilities they use are kept."""
        used = np.unique(np.concatenate([closures.triangles.ravel(), closures.quadrangles.ravel()]))
        if len(used) == 0:
            raise ValueError("no closure quantity: need three or more stations with S/N >= the cut at one time")
        where = np.full(len(uv), -1, np.int64)
        where[used] = np.arange(len(used))
        t = lambda a, dt=torch.float64: torch.as_tensor(np.asarray(a), dtype=dt)  # noqa: E731
        return cls(np.ascontiguousarray(np.asarray(uv, np.float64)[used]), t(where[closures.triangles], torch.long),
                   t(closures.signs), t(closures.phase), t(closures.sigma_phase),
                   t(where[closures.quadrangles], torch.long), t(closures.logamp), t(closures.sigma_logamp),
                   float(total_flux), float(sigma_flux), N, pixel_scale_arcsec, float(centroid_sigma))

    def model(self, images: torch.Tensor) -> torch.Tensor:
        """(B, m) complex model visibilities of images (B, N, N) Jy/pixel, differentiable."""
        return Degrid.apply(images.double(), self.uv, self.pixel_scale_arcsec)

    def residuals(self, vis: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(ψ - ψ_model (B, T), ln A - ln A_model (B, Q)) of model visibilities (B, m)."""
        phases = torch.atan2(vis.imag, vis.real + 1e-300)
        psi = (phases[:, self.triangles] * self.signs).sum(-1)
        la = 0.5 * torch.log(vis.real ** 2 + vis.imag ** 2 + 1e-300)[:, self.quadrangles]
        return self.phase - psi, self.logamp - (la[..., 0] + la[..., 1] - la[..., 2] - la[..., 3])

    def neg_log(self, images: torch.Tensor, phase_noise: Optional[torch.Tensor] = None,
                logamp_noise: Optional[torch.Tensor] = None, flux_noise: Optional[torch.Tensor] = None) -> torch.Tensor:
        """L(I) (B,) of images (B, N, N) Jy/pixel (module docstring); the noises (B, T), (B, Q), (B,) in units of
        σ shift the data (randomise-then-optimise)."""
        dpsi, dla = self.residuals(self.model(images))
        if phase_noise is not None:
            dpsi = dpsi + phase_noise * self.sigma_phase
            dla = dla + logamp_noise * self.sigma_logamp
        out = ((1 - torch.cos(dpsi)) / self.sigma_phase ** 2).sum(-1) + 0.5 * (dla / self.sigma_logamp).pow(2).sum(-1)
        if np.isfinite(self.total_flux) and np.isfinite(self.sigma_flux):
            df = images.double().sum((-2, -1)) - self.total_flux
            if flux_noise is not None:
                df = df + flux_noise * self.sigma_flux
            out = out + 0.5 * (df / self.sigma_flux) ** 2
        if np.isfinite(self.centroid_sigma):
            r = torch.arange(self.N, dtype=torch.float64, device=images.device) - self.N // 2
            total = images.double().sum((-2, -1)).clamp_min(1e-30)
            rows, cols = (images.double().sum(-1) * r).sum(-1) / total, (images.double().sum(-2) * r).sum(-1) / total
            out = out + 0.5 * (rows ** 2 + cols ** 2) / self.centroid_sigma ** 2
        return out

    def chi2(self, image: torch.Tensor) -> tuple[float, float]:
        """(χ²_cphase, χ²_logcamp) of one image (N, N) Jy/pixel, ehtim's definitions (NaN where none)."""
        with torch.no_grad():
            dpsi, dla = self.residuals(self.model(image[None]))
        cp = float(2 * ((1 - torch.cos(dpsi)) / self.sigma_phase ** 2).mean()) if dpsi.shape[-1] else float("nan")
        la = float((dla / self.sigma_logamp).pow(2).mean()) if dla.shape[-1] else float("nan")
        return cp, la

    def pooled_chi2(self, image: torch.Tensor) -> float:
        """χ² per closure of one image (N, N), phases and log amplitudes pooled by their counts (``chi2``)."""
        cp, la = self.chi2(image)
        return pooled(len(self.phase), cp, len(self.logamp), la)


def closure_step(like: ClosureLikelihood, z: torch.Tensor, rho: float, flux_scale: float,
                 generators: Sequence[torch.Generator], sample: bool = True, iterations: int = 25) -> torch.Tensor:
    """x | z, closures for z (B, S, N, N) model space at flux scale F (module docstring): a randomise-then-
    optimise draw per image (one generator per observation, B = 1 here), or the mode if not ``sample``."""
    B, S, N, _ = z.shape
    target = z.reshape(B * S, N, N).double()
    noises = (None, None, None)
    if sample:
        target = target + rho * fill_normal(generators, torch.empty(B, S, N, N, dtype=torch.float64)).reshape(-1, N, N)
        shape = (B, S, len(like.phase) + len(like.logamp) + 1)
        n = fill_normal(generators, torch.empty(shape, dtype=torch.float64)).reshape(B * S, -1)
        T, Q = len(like.phase), len(like.logamp)
        noises = (n[:, :T], n[:, T:T + Q], n[:, -1])
    x = target.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([x], lr=1, max_iter=iterations, history_size=10, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-9, tolerance_change=1e-12)

    def objective() -> torch.Tensor:
        opt.zero_grad()
        loss = ((x - target) ** 2).sum() / (2 * rho ** 2) + like.neg_log(flux_scale * (x + 1) / 2, *noises).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(objective)
    return x.detach().reshape(B, S, N, N).to(z.dtype)

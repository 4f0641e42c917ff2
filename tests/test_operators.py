"""Exact identities of the SVD operators, in float64 (docs/design.md §2)."""

import math
import warnings

import pytest
import torch

from ddrm.inverse.operators import (DenseSVDOperator, FourierSamplingOperator, IdentityOperator, PixelMaskOperator,
                                    RealFourierBasis, conjugate_flip)

F64 = torch.float64


def eye_images(N):
    return torch.eye(N * N, dtype=torch.float64).reshape(N * N, N, N)


@pytest.mark.parametrize("N", [1, 2, 7, 8, 16])
def test_real_fourier_basis_is_orthogonal(N):
    B = RealFourierBasis(N)
    V = B.Vt(eye_images(N))  # row p = Vᵀ e_p = row p of the matrix V
    I = torch.eye(N * N, dtype=torch.float64)
    assert torch.allclose(V @ V.T, I, atol=1e-12)  # V Vᵀ = I
    assert torch.allclose(V.T @ V, I, atol=1e-12)  # Vᵀ V = I
    assert torch.allclose(B.V(I).reshape(N * N, N * N).T, V, atol=1e-12)  # V e_i is column i


@pytest.mark.parametrize("N", [7, 8])
def test_basis_cell_classes(N):
    B = RealFourierBasis(N)
    assert int(B.self_conjugate.sum()) == (1 if N % 2 else 4)
    assert int(B.representative.sum()) == int(B.partner.sum()) == (N * N - int(B.self_conjugate.sum())) // 2
    assert torch.equal(conjugate_flip(B.representative), B.partner)


def dense_fourier_H(op: FourierSamplingOperator) -> torch.Tensor:
    """The measured real coordinates built row by row from the dense 2-D DFT matrix."""
    N = op.N
    k = torch.arange(N, dtype=torch.float64)
    F1 = torch.exp(-2j * math.pi * k[:, None] * k[None, :] / N) / math.sqrt(N)
    F = torch.kron(F1, F1)  # unitary 2-D DFT on row-major flat images
    flat = torch.arange(N * N).reshape(N, N)
    partner = conjugate_flip(flat).flatten()
    rows = []
    for i, c in enumerate(op.measured.tolist()):
        s, p = float(op.singulars[i]), int(partner[c])
        if p == c:
            rows.append(s * F[c].real)
        elif c < p:
            rows.append(s * math.sqrt(2) * F[c].real)
        else:
            rows.append(s * math.sqrt(2) * F[p].imag)
    return torch.stack(rows)


@pytest.mark.parametrize("N", [7, 8])
def test_fourier_H_matches_dense_dft_with_natural_weights(N, fourier_op):
    op = fourier_op(N, 0.5, seed=N)
    Hd = dense_fourier_H(op)
    H_applied = op.H(eye_images(N)).T  # column p = H e_p
    assert torch.allclose(H_applied, Hd, atol=1e-12)
    n = op.counts.flatten()[op.measured]
    assert torch.allclose(op.singulars, (n / n.mean()).sqrt())  # natural weighting: s_k = √(n_k w)
    assert torch.allclose(Hd @ Hd.T, torch.diag(op.singulars**2), atol=1e-12)  # U = I, rows orthogonal
    dense = DenseSVDOperator(Hd, N)
    assert torch.allclose(dense.singulars.sort().values, op.singulars.sort().values, atol=1e-10)


def _operators(fourier_op):
    g = torch.Generator().manual_seed(3)
    mask = torch.rand(8, 8, generator=g) < 0.4
    A = torch.randn(20, 64, generator=g, dtype=F64)
    return [IdentityOperator(8, torch.float64), PixelMaskOperator(mask, torch.float64),
            DenseSVDOperator(A, 8), fourier_op(8, 0.4), fourier_op(7, 0.4, weighting="uniform")]


def test_adjointness_and_pseudo_inverse(fourier_op):
    g = torch.Generator().manual_seed(4)
    for op in _operators(fourier_op):
        x = torch.randn(3, op.N, op.N, generator=g, dtype=F64)
        y = torch.randn(3, op.num_outputs, generator=g, dtype=F64)
        lhs = (y * op.H(x)).sum(-1)
        rhs = (op.Ht(y) * x).sum((-2, -1))
        assert torch.allclose(lhs, rhs, atol=1e-10, rtol=0), type(op).__name__
        y_range = op.H(x)
        assert torch.allclose(op.H(op.H_pinv(y_range)), y_range, atol=1e-10), type(op).__name__
        xbar = op.Vt(x)
        assert torch.allclose(op.V(xbar), x, atol=1e-12)
        assert torch.allclose(op.U(op.Ut(y_range)), y_range, atol=1e-10)


def test_non_closed_mask_is_closed_with_a_warning():
    N = 8
    mask = torch.zeros(N, N, dtype=torch.bool)
    mask[1, 2] = True  # partner (7, 6) missing
    with pytest.warns(UserWarning, match="not closed"):
        op = FourierSamplingOperator(mask)
    assert bool(op.mask[1, 2]) and bool(op.mask[7, 6]) and int(op.mask.sum()) == 2
    assert torch.equal(op.mask, conjugate_flip(op.mask))


def test_centred_mask_is_shifted_to_fft_grid():
    N = 8
    centred = torch.zeros(N, N, dtype=torch.bool)
    centred[N // 2, N // 2] = True  # DC when fftshift-ed
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        op = FourierSamplingOperator(centred, centred=True)
    assert op.measured.tolist() == [0]


def test_bad_operator_input():
    with pytest.raises(ValueError, match="square"):
        FourierSamplingOperator(torch.ones(4, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="no cell"):
        FourierSamplingOperator(torch.zeros(4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="non-negative"):
        FourierSamplingOperator(-torch.ones(4, 4))
    with pytest.raises(ValueError, match="weighting"):
        FourierSamplingOperator(torch.ones(4, 4), weighting="briggs")
    op = IdentityOperator(8, torch.float64)
    with pytest.raises(ValueError, match=r"\(\.\.\., 8, 8\)"):
        op.H(torch.zeros(2, 7, 7, dtype=F64))
    with pytest.raises(ValueError, match="NaN"):
        op.Ht(torch.full((1, 64), float("nan"), dtype=F64))
    with pytest.raises(ValueError, match="measurements have shape"):
        op.Ht(torch.zeros(1, 63, dtype=F64))

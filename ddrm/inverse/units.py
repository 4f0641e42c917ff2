"""Model space [-1, 1] (the network's) and image space [0, 1] (metrics, FITS): docs/design.md §1."""

from __future__ import annotations

import torch

from ddrm.inverse.operators.base import SVDOperator


def to_image(x_model: torch.Tensor) -> torch.Tensor:
    """x_img = (x_model + 1) / 2."""
    return (x_model + 1) / 2


def to_model(x_img: torch.Tensor) -> torch.Tensor:
    """x_model = 2 x_img - 1."""
    return 2 * x_img - 1


def image_space_measurements(y_model: torch.Tensor, op: SVDOperator) -> torch.Tensor:
    """Measurements of x_img from those of x_model: y_img = (y_model + H 1) / 2 (noise std halves)."""
    ones = torch.ones(op.N, op.N, dtype=y_model.dtype, device=y_model.device)
    return (y_model + op.H(ones)) / 2

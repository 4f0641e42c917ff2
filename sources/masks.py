"""Loading a user's uv mask (.npy, bool or counts) into the Fourier operator."""

from __future__ import annotations

from pathlib import Path
from typing import Union

import numpy as np

from ddrm.inverse.operators import FourierSamplingOperator
from ddrm.radio import mask_operator


def load_mask_operator(path: Union[str, Path], *, centred: bool = True) -> FourierSamplingOperator:
    """A .npy bool or count mask (N, N) as an operator; bad files raise ValueError naming them."""
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except Exception as err:
        raise ValueError(f"{path}: not a readable .npy mask ({err})") from None
    try:
        return mask_operator(arr, centred=centred)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None

"""The one seed-derivation rule: independent, well-mixed 63-bit seeds from labelled parts.

    derive_seed(root, *parts) = SeedSequence([root, *ints(parts)]).generate_state(1, uint64)[0] >> 1
    stage_generators(generators, label): one generator per given one, seeded derive_seed(its seed, label)

Strings (array names, sampler names, purposes) become integers through sha256, so a seed depends
on *names*, never on positions in a list: adding an array never changes another's noise.
"""

from __future__ import annotations

import hashlib
from typing import Sequence, Union

import numpy as np
import torch


def _as_int(part: Union[int, str]) -> int:
    if isinstance(part, str):
        return int.from_bytes(hashlib.sha256(part.encode()).digest()[:8], "little")
    if isinstance(part, (bool, float)) or int(part) != part or int(part) < 0:
        raise ValueError(f"seed parts must be non-negative integers or strings, got {part!r}")
    return int(part)


def derive_seed(*parts: Union[int, str]) -> int:
    """A 63-bit seed (fits torch, numpy and JSON) from ``parts`` (module docstring)."""
    if not parts:
        raise ValueError("derive_seed needs at least one part")
    return int(np.random.SeedSequence([_as_int(p) for p in parts]).generate_state(1, np.uint64)[0] >> 1)


def stage_generators(generators: Sequence[torch.Generator], label: str) -> list[torch.Generator]:
    """Fresh generators for one stage of a computation (``label``), each seeded ``derive_seed`` of the
    caller's generator's initial seed and the label: stages draw independent streams, by name."""
    return [torch.Generator(device=g.device).manual_seed(derive_seed(g.initial_seed(), label)) for g in generators]

"""Strict JSON (RFC 8259): no NaN, no Infinity, so that any parser reads it (JavaScript's JSON.parse,
jq, Go's encoding/json). A value that is not a finite number is written as null, at any depth."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np


def finite(value: Any) -> Any:
    """``value`` with every non-finite float (Python or numpy) replaced by None, recursively through dicts,
    lists and tuples (tuples become lists, numpy scalars and arrays Python values)."""
    if isinstance(value, dict):
        return {str(k): finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    if isinstance(value, np.ndarray):
        return finite(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dumps(value: Any, **kwargs) -> str:
    """Strict JSON text of ``value`` (``finite``); anything JSON has no type for becomes its ``str``."""
    return json.dumps(finite(value), allow_nan=False, default=str, **kwargs)


def rounded(value: Any, digits: int, exact: frozenset = frozenset()) -> Any:
    """``value`` with every float rounded to ``digits`` significant digits, recursively, except the values of
    keys in ``exact`` (at any depth), which keep every digit."""
    if isinstance(value, dict):
        return {k: v if k in exact else rounded(v, digits, exact) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v, digits, exact) for v in value]
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and value != 0:
        return float(f"{float(value):.{digits}g}")
    return value

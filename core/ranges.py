"""Range checks for the numbers a model package's manifest (or a setting) gives: a size, width or count read from a
file is checked before a tensor is made of it, so a corrupt or hostile manifest is refused with its field named
instead of exhausting the memory or failing deep inside PyTorch."""

from __future__ import annotations

import math


def whole_in(value: object, name: str, low: int, high: int) -> int:
    """``value`` when it is a whole number (not a bool) from ``low`` to ``high``; a ``ValueError`` naming ``name``."""
    if type(value) is not int or not low <= value <= high:
        raise ValueError(f"{name} is a whole number from {low} to {high}, not {value!r}")
    return value


def real_in(value: object, name: str, low: float, high: float) -> float:
    """``value`` when it is a finite number (not a bool) from ``low`` to ``high``; a ``ValueError`` naming ``name``."""
    if type(value) not in (int, float) or not math.isfinite(value) or not low <= value <= high:
        raise ValueError(f"{name} is a number from {low:g} to {high:g}, not {value!r}")
    return float(value)

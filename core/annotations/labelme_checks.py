"""Checks of decoded JSON values shared by the LabelMe file and shape layers, and the words their errors use.

A value in an error message is cut short (:func:`brief`): a hostile file can hold a value megabytes long.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.errors import AnnotationFileError


def type_name(value: Any) -> str:
    """The JSON kind of ``value`` in words ("an object", "a list", "null"...), for error messages."""
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__
    )


def brief(value: Any) -> str:
    """A value for an error message, cut short: a bad value can be megabytes long."""
    try:
        text = repr(value) if isinstance(value, str) else str(value)
    except ValueError:  # an integer over Python's 4300-digit limit for str()
        text = f"<{type_name(value)}>"
    return text if len(text) <= 40 else text[:37] + "..."


def is_int(value: Any) -> bool:
    """A JSON whole number (not a boolean)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A JSON number that fits in a float (not a bool, and not an integer of hundreds of digits)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        float(value)
    except OverflowError:
        return False
    return True


def checked_flags(value: Any, what: str, path: Path | None) -> dict[str, bool]:
    """LabelMe ``flags`` (names to true or false; null is none). Raises AnnotationFileError naming ``what``."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, bool) for k, v in value.items()):
        raise AnnotationFileError(f"{what} must map names to true or false", path)
    return dict(value)

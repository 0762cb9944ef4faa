"""Window and level: mapping CT values (HU) or raw pixel values to 8-bit display grey levels.

Presets follow common CT practice (bone 400/1800, soft tissue 40/400). ``min-max`` reproduces the paper's export,
a linear mapping of the slice's own minimum to 0 and maximum to 255.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Window:
    """A linear display window: values ``center ± width/2`` map to 0…255."""

    center: float
    width: float
    name: str = ""

    def __post_init__(self) -> None:
        if not (np.isfinite(self.center) and np.isfinite(self.width)) or self.width <= 0:
            raise ValueError(f"a window needs a finite centre and a positive width, not {self.center}/{self.width}")

    @property
    def lower(self) -> float:
        return self.center - self.width / 2.0

    @property
    def upper(self) -> float:
        return self.center + self.width / 2.0

    @classmethod
    def from_bounds(cls, lower: float, upper: float, name: str = "") -> Window:
        if upper <= lower:
            upper = lower + 1.0
        return cls(center=(lower + upper) / 2.0, width=upper - lower, name=name)

    def label(self) -> str:
        text = f"C {self.center:g} / W {self.width:g}"
        return f"{self.name} ({text})" if self.name else text


BONE = Window(400.0, 1800.0, "bone")
SOFT_TISSUE = Window(40.0, 400.0, "soft tissue")
PRESETS: dict[str, Window] = {"bone": BONE, "soft": SOFT_TISSUE, "soft-tissue": SOFT_TISSUE}
MIN_MAX = "min-max"
DICOM = "dicom"


def min_max_window(pixels: np.ndarray) -> Window:
    """The paper's export window: the slice's own minimum to maximum (NaN ignored)."""
    finite = pixels[np.isfinite(pixels)] if pixels.dtype.kind == "f" else pixels
    if finite.size == 0:
        return Window(0.5, 1.0, MIN_MAX)
    return Window.from_bounds(float(finite.min()), float(finite.max()), MIN_MAX)


def apply_window(pixels: np.ndarray, window: Window) -> np.ndarray:
    """Map ``pixels`` through ``window`` to a C-contiguous uint8 array of the same shape."""
    lower, scale = window.lower, 255.0 / window.width
    out = np.empty(pixels.shape, dtype=np.float32)
    np.subtract(pixels, lower, out=out, casting="unsafe")
    out *= scale
    np.clip(out, 0.0, 255.0, out=out)
    np.nan_to_num(out, copy=False, nan=0.0)
    return np.rint(out, out=out).astype(np.uint8)


def to_uint8_min_max(pixels: np.ndarray) -> np.ndarray:
    """The paper's 8-bit export: linear min-max mapping."""
    return apply_window(pixels, min_max_window(pixels))


def parse_window(spec: str) -> Window | str:
    """Parse a command-line window: ``bone``, ``soft``, ``min-max``, ``dicom`` or ``CENTER,WIDTH``.

    Returns a :class:`Window`, or the string ``"min-max"`` or ``"dicom"`` for windows that depend on the image.
    Raises ``ValueError`` with a message for anything else.
    """
    key = spec.strip().lower().replace("_", "-")
    if key in PRESETS:
        return PRESETS[key]
    if key in (MIN_MAX, "minmax", "paper"):
        return MIN_MAX
    if key == DICOM:
        return DICOM
    parts = key.replace("/", ",").split(",")
    if len(parts) == 2:
        try:
            return Window(float(parts[0]), float(parts[1]))
        except ValueError:
            pass
    raise ValueError(f"unknown window {spec!r}: use bone, soft, min-max, dicom or CENTER,WIDTH (for example 400,1800)")

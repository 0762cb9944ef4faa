"""Drawing helpers for the phantom: a float HU canvas with millimetre crops, soft edges and smooth noise.

Image coordinates are millimetres from the top-left corner: x to the right is posterior, y down is inferior.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from core.synthetic.anatomy import VertebraShape


class Canvas:
    """The slice being drawn (HU) and where cancellous bone is (for its texture)."""

    def __init__(self, height: int, width: int, spacing: float) -> None:
        self.hu = np.empty((height, width), dtype=np.float32)
        self.cancellous = np.zeros((height, width), dtype=np.float32)
        self.spacing = spacing
        self.height, self.width = height, width

    def crop(self, x1: float, y1: float, x2: float, y2: float) -> tuple[slice, slice, np.ndarray, np.ndarray] | None:
        """Row and column slices of a millimetre rectangle, with the mm coordinates of its pixel centres."""
        s = self.spacing
        c1, c2 = max(0, int(np.floor(x1 / s))), min(self.width, int(np.ceil(x2 / s)))
        r1, r2 = max(0, int(np.floor(y1 / s))), min(self.height, int(np.ceil(y2 / s)))
        if c2 <= c1 or r2 <= r1:
            return None
        xs = ((np.arange(c1, c2, dtype=np.float32) + 0.5) * s)[None, :]
        ys = ((np.arange(r1, r2, dtype=np.float32) + 0.5) * s)[:, None]
        return slice(r1, r2), slice(c1, c2), xs, ys

    def blend(self, rows: slice, cols: slice, weight: np.ndarray, value: float | np.ndarray) -> None:
        """Mix ``value`` in with ``weight`` (0 keeps what is there, 1 replaces it)."""
        region = self.hu[rows, cols]
        region += weight * (value - region)

    def mark_cancellous(self, rows: slice, cols: slice, core: np.ndarray) -> None:
        self.cancellous[rows, cols] = np.maximum(self.cancellous[rows, cols], core)


def soft(signed_distance: np.ndarray, edge: float) -> np.ndarray:
    """1 inside, 0 outside, with a linear ramp of width ``edge`` across the boundary (partial volume)."""
    return np.clip(0.5 - signed_distance / edge, 0.0, 1.0)


def band(x_mm: float, low: float, high: float, edge: float = 2.0) -> float:
    """How much of a left-right band ``low`` ≤ |x| ≤ ``high`` the slab at ``x_mm`` sees (soft edges)."""
    ax = abs(x_mm)
    return float(np.clip(min(ax - low, high - ax) / edge + 0.5, 0.0, 1.0))


def local(shape: VertebraShape, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates in a body's frame: ``u`` along its axis (inferior +), ``v`` anterior (+), its centre at 0."""
    dx, dy = xs - shape.centre[0], ys - shape.centre[1]
    sin, cos = np.float32(np.sin(shape.angle)), np.float32(np.cos(shape.angle))
    return dx * sin + dy * cos, -dx * cos + dy * sin


def smooth_noise(height: int, width: int, scale: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth noise of about -1…1 that varies over ``scale`` pixels (drawn small, then enlarged)."""
    small = rng.standard_normal((height // scale + 2, width // scale + 2)).astype(np.float32)
    big = ndimage.zoom(small, scale, order=1)
    return np.clip(big[:height, :width], -2.5, 2.5) / 1.5


def ellipse(
    canvas: Canvas, centre: tuple[float, float], rx: float, ry: float, value: float, mask: np.ndarray | None = None
) -> None:
    crop = canvas.crop(centre[0] - rx - 1, centre[1] - ry - 1, centre[0] + rx + 1, centre[1] + ry + 1)
    if crop is None:
        return
    rows, cols, xs, ys = crop
    radial = np.sqrt(((xs - centre[0]) / rx) ** 2 + ((ys - centre[1]) / ry) ** 2)
    weight = soft((radial - 1.0) * min(rx, ry), canvas.spacing)
    if mask is not None:
        weight = weight * mask[rows, cols]
    canvas.blend(rows, cols, weight, value)

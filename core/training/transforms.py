"""(image, boxes) transforms that move the boxes with the pixels, exactly.

The paper's 8-fold augmentation is the dihedral group D4 of the square: 0-3 quarter turns, each with or without a
horizontal flip. Boxes are (n, 4) arrays of x1, y1, x2, y2 in pixel-edge coordinates (pixel (r, c) covers
[c, c+1) x [r, r+1)), so a transform of the N x N square maps them without rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from core.imaging.letterbox import Letterbox

D4_SIZE = 8


def d4_image(image: np.ndarray, k: int) -> np.ndarray:
    """Element ``k`` (0…7) of D4 applied to a square image: ``k % 4`` counter-clockwise quarter turns, then a
    horizontal flip when ``k >= 4``."""
    if image.shape[0] != image.shape[1]:
        raise ValueError(f"D4 needs a square image, not {image.shape[1]}x{image.shape[0]}")
    out = np.rot90(image, k % 4)
    if k >= 4:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


def d4_boxes(boxes: np.ndarray, k: int, side: float) -> np.ndarray:
    """The same element of D4 applied to boxes in a ``side`` x ``side`` square."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    for _ in range(k % 4):  # a counter-clockwise quarter turn sends the point (x, y) to (y, side - x)
        b = np.stack([b[:, 1], side - b[:, 2], b[:, 3], side - b[:, 0]], axis=1)
    if k >= 4:
        b = np.stack([side - b[:, 2], b[:, 1], side - b[:, 0], b[:, 3]], axis=1)
    return b


@dataclass(frozen=True)
class InputGeometry:
    """How a slice becomes the model's square input: a letterbox of side ``side`` (centre-crop and zero-pad, the
    paper's 1024) scaled to ``size`` pixels (``size == side`` keeps full resolution)."""

    side: int = 1024
    size: int = 1024

    @property
    def scale(self) -> float:
        return self.size / self.side

    def letterbox(self, width: int, height: int) -> Letterbox:
        return Letterbox(width, height, self.side)

    def image(self, pixels: np.ndarray) -> np.ndarray:
        """A uint8 slice → its uint8 ``size`` x ``size`` model input."""
        boxed = self.letterbox(pixels.shape[1], pixels.shape[0]).apply(pixels)
        if self.size == self.side:
            return boxed
        return np.asarray(Image.fromarray(boxed).resize((self.size, self.size), Image.Resampling.BOX))

    def to_input(self, boxes: np.ndarray, width: int, height: int) -> np.ndarray:
        """Slice pixel boxes → input pixel boxes (clipped to the square)."""
        return self.letterbox(width, height).to_letterbox(boxes) * self.scale

    def from_input(self, boxes: np.ndarray, width: int, height: int) -> np.ndarray:
        """Input pixel boxes → slice pixel boxes (clipped to the slice)."""
        return self.letterbox(width, height).from_letterbox(np.asarray(boxes, dtype=np.float64) / self.scale)

    def to_json(self) -> dict[str, int]:
        return {"side": self.side, "size": self.size}


def keep_visible(boxes: np.ndarray, min_side: float = 2.0) -> np.ndarray:
    """Which boxes still have some area after clipping (a letterbox crop can cut a box off)."""
    b = np.asarray(boxes).reshape(-1, 4)
    return ((b[:, 2] - b[:, 0]) >= min_side) & ((b[:, 3] - b[:, 1]) >= min_side)

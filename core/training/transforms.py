"""(image, boxes) transforms that move the boxes with the pixels, exactly.

The paper's 8-fold augmentation is the dihedral group D4 of the square: 0-3 quarter turns, each with or without a
horizontal flip. Boxes are (n, 4) arrays of x1, y1, x2, y2 in pixel-edge coordinates (pixel (r, c) covers
[c, c+1) x [r, r+1)), so a transform of the N x N square maps them without rounding.
"""

from __future__ import annotations

import numpy as np

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


def keep_visible(boxes: np.ndarray, min_side: float = 2.0) -> np.ndarray:
    """Which boxes still have some area after clipping (a letterbox crop can cut a box off)."""
    b = np.asarray(boxes).reshape(-1, 4)
    return ((b[:, 2] - b[:, 0]) >= min_side) & ((b[:, 3] - b[:, 1]) >= min_side)

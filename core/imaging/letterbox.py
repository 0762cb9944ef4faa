"""Letterbox: bring a slice to an N x N square by centre-cropping and zero-padding, never by resizing.

The paper brings sagittal slices (mean 743 x 619) to 1024 x 1024 this way. Along each axis a side longer than N is
cropped symmetrically (the extra pixel, when odd, comes off the far side) and a shorter side is padded symmetrically
with zeros. The mapping is a pure integer translation, so boxes map exactly in both directions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from core.ranges import whole_in

DEFAULT_SIDE = 1024


@dataclass(frozen=True)
class Letterbox:
    """The translation from slice pixels to letterbox pixels: ``x' = x + dx``, ``y' = y + dy``."""

    width: int
    height: int
    side: int = DEFAULT_SIDE

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0 or self.side <= 0:
            raise ValueError(f"letterbox sizes must be positive: {self.width}x{self.height} → {self.side}")

    @staticmethod
    def _offset(size: int, side: int) -> int:
        return (side - size) // 2 if size <= side else -((size - side) // 2)

    @property
    def dx(self) -> int:
        return self._offset(self.width, self.side)

    @property
    def dy(self) -> int:
        return self._offset(self.height, self.side)

    def apply(self, image: np.ndarray, fill: float = 0) -> np.ndarray:
        """The N x N (x channels) letterboxed copy of ``image`` (rows, columns[, channels])."""
        if image.shape[0] != self.height or image.shape[1] != self.width:
            raise ValueError(
                f"image is {image.shape[1]}x{image.shape[0]}, letterbox expects {self.width}x{self.height}"
            )
        out = np.full((self.side, self.side, *image.shape[2:]), fill, dtype=image.dtype)
        src_x, dst_x, n_x = self._span(self.width)
        src_y, dst_y, n_y = self._span(self.height)
        out[dst_y : dst_y + n_y, dst_x : dst_x + n_x] = image[src_y : src_y + n_y, src_x : src_x + n_x]
        return out

    def _span(self, size: int) -> tuple[int, int, int]:
        """(first source index, first destination index, count) along one axis."""
        offset = self._offset(size, self.side)
        if size <= self.side:
            return 0, offset, size
        return -offset, 0, self.side

    def to_letterbox(self, boxes: np.ndarray, *, clip: bool = True) -> np.ndarray:
        """Boxes (n, 4) x1, y1, x2, y2 in slice pixels → letterbox pixels (clipped to the square by default)."""
        out = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) + [self.dx, self.dy, self.dx, self.dy]
        return np.clip(out, 0, self.side) if clip else out

    def from_letterbox(self, boxes: np.ndarray, *, clip: bool = True) -> np.ndarray:
        """Boxes (n, 4) in letterbox pixels → slice pixels (clipped to the slice by default)."""
        out = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) - [self.dx, self.dy, self.dx, self.dy]
        if clip:
            out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, self.width)
            out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, self.height)
        return out

    def visible_region(self) -> tuple[int, int, int, int]:
        """The part of the slice that the square shows, as x1, y1, x2, y2 in slice pixels."""
        x1, y1 = max(0, -self.dx), max(0, -self.dy)
        return x1, y1, min(self.width, self.side - self.dx), min(self.height, self.side - self.dy)


#: The largest letterbox side and input size a detector may have: four times the paper's, an input of 64 MB a view.
MAX_INPUT_SIDE = 4096


@dataclass(frozen=True)
class InputGeometry:
    """How a slice becomes the model's square input: a letterbox of side ``side`` (centre-crop and zero-pad, the
    paper's 1024) scaled to ``size`` pixels (``size == side`` keeps full resolution)."""

    side: int = 1024
    size: int = 1024

    def __post_init__(self) -> None:
        whole_in(self.side, "the input letterbox's side", 32, MAX_INPUT_SIDE)
        whole_in(self.size, "the input size", 32, MAX_INPUT_SIDE)

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

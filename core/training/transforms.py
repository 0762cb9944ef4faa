"""(image, boxes) transforms that move the boxes with the pixels, exactly.

The paper's 8-fold augmentation is the dihedral group D4 of the square: 0-3 quarter turns, each with or without a
horizontal flip. Boxes are (n, 4) arrays of x1, y1, x2, y2 in pixel-edge coordinates (pixel (r, c) covers
[c, c+1) x [r, r+1)), so a transform of the N x N square maps them without rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

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


@dataclass(frozen=True)
class AppearanceJitter:
    """Photometric jitter of the 8-bit input, drawn per sample: the scanner, the reconstruction kernel and the export
    change how a slice looks; the anatomy, and so the boxes, stay where they are.

    Each sample is jittered with ``probability``; then each effect is applied with probability one half, in this
    order: a loss of resolution (down by a factor from ``resolution``, then back), a blur (Gaussian, SD in pixels from
    ``blur_px``) or a sharpening (unsharp mask, amount from ``sharpen``), the grey levels (the white point scaled by
    ``white``: a brighter maximum elsewhere, from contrast or metal, darkens the bone under a min-max rendering; the
    black point raised by ``black``), a gamma from ``gamma``, and noise (SD in grey values from ``noise``, its grain,
    the SD of its correlation in pixels, from ``grain_px``; 0 is white noise).

    ``scale``, drawn per sample, multiplies the size of every spatial effect (the resolution's factor, the blur, the
    sharpening's radius and the noise's grain): 1 keeps them as given, more draws them coarser, as softer kernels and
    coarser reconstructions show (the classifier's ``coarse`` jitter,
    :data:`core.training.classification_data.APPEARANCE_GRAIN`).
    """

    probability: float = 0.8
    resolution: tuple[float, float] = (1.0, 2.0)
    blur_px: tuple[float, float] = (0.3, 1.5)
    sharpen: tuple[float, float] = (0.2, 1.0)
    white: tuple[float, float] = (0.55, 1.0)
    black: tuple[float, float] = (0.0, 0.15)
    gamma: tuple[float, float] = (0.6, 1.6)
    noise: tuple[float, float] = (1.0, 10.0)
    grain_px: tuple[float, float] = (0.0, 0.0)
    scale: tuple[float, float] = (1.0, 1.0)

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``image``: 2-D uint8 → the same shape, uint8 (unchanged when this sample is not jittered)."""
        if image.size == 0 or rng.random() >= self.probability:
            return image
        grey = self.effects(image.astype(np.float32) / 255.0, rng)
        return np.clip(np.rint(grey * 255.0), 0, 255).astype(np.uint8)

    def grey(self, grey: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``grey``: 2-D float in 0…1 → the same, clipped to 0…1 (unchanged when this sample is not jittered)."""
        if grey.size == 0 or rng.random() >= self.probability:
            return grey
        return np.clip(self.effects(grey.astype(np.float32), rng), 0.0, 1.0)

    def effects(self, grey: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The effects, each drawn with probability one half, on float grey values (0…1; not clipped at the end)."""

        def draw(bounds: tuple[float, float]) -> float:
            # A fixed setting draws nothing, so that adding one leaves the other draws of a seed as they were.
            return float(bounds[0]) if bounds[0] == bounds[1] else float(rng.uniform(*bounds))

        scale = draw(self.scale)
        if rng.random() < 0.5:
            grey = _resample_back(grey, draw(self.resolution) * scale)
        if rng.random() < 0.5:
            if rng.random() < 0.5:
                grey = ndimage.gaussian_filter(grey, draw(self.blur_px) * scale)
            else:
                grey = grey + draw(self.sharpen) * (grey - ndimage.gaussian_filter(grey, scale))
        if rng.random() < 0.5:
            black, white = draw(self.black), draw(self.white)
            grey = (grey * white - black) / (1.0 - black)
        if rng.random() < 0.5:
            grey = np.clip(grey, 0.0, 1.0) ** draw(self.gamma)
        if rng.random() < 0.5:
            spread = draw(self.noise) / 255.0
            grey = grey + correlated_noise(grey.shape, draw(self.grain_px) * scale, rng) * spread
        return grey


def correlated_noise(shape: tuple[int, ...], grain_px: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise of SD 1 whose correlation is a Gaussian of SD ``grain_px`` pixels (white at 0), float32."""
    white = rng.normal(0.0, 1.0, shape).astype(np.float32)
    if grain_px <= 0:
        return white
    smooth = ndimage.gaussian_filter(white, grain_px, mode="wrap")
    return smooth / max(float(smooth.std()), 1e-6)


def _resample_back(grey: np.ndarray, factor: float) -> np.ndarray:
    """``grey`` down by ``factor`` (area average) and back up (bilinear) to its own shape: detail finer than the
    coarser pixel is lost."""
    tensor = torch.from_numpy(np.ascontiguousarray(grey))[None, None]
    small = [max(1, round(n / factor)) for n in grey.shape]
    down = F.interpolate(tensor, size=small, mode="area")
    return F.interpolate(down, size=list(grey.shape), mode="bilinear", align_corners=False)[0, 0].numpy()

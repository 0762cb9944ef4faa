"""Anatomy slabs built from rectangles, for the tests of the deformation and the lesions: a column of vertebral
bodies with discs between them, the canal and posterior elements behind, soft tissue and fat around, air outside.
Edges may fall between pixels, so partial volume is exact (each rectangle's fraction is the product of its 1-D
overlaps)."""

from __future__ import annotations

import numpy as np

from core.synthetic.slab import TISSUE, TISSUES, AnatomySlab, SlabBody


def rectangle(shape: tuple[int, int], x1: float, y1: float, x2: float, y2: float) -> np.ndarray:
    """The share of each pixel inside the rectangle (pixel edges at whole numbers)."""
    rows = np.clip(np.minimum(np.arange(shape[0]) + 1, y2) - np.maximum(np.arange(shape[0]), y1), 0, 1)
    cols = np.clip(np.minimum(np.arange(shape[1]) + 1, x2) - np.maximum(np.arange(shape[1]), x1), 0, 1)
    return np.outer(rows, cols).astype(np.float32)


def paint(fractions: np.ndarray, weight: np.ndarray, tissue: str) -> None:
    fractions *= 1 - weight
    fractions[TISSUE[tissue]] += weight


def column_slab(
    shape: tuple[int, int] = (300, 220),
    pixel_mm: float = 0.75,
    count: int = 5,
    body: tuple[float, float] = (48.0, 40.0),  # depth (x), height (y) in pixels
    disc: float = 10.0,
    left: float = 80.25,
    top: float = 30.5,
) -> AnatomySlab:
    """A column of ``count`` rectangular bodies (anterior, the left side, at x = ``left``) with discs between."""
    height, width = shape
    fractions = np.zeros((len(TISSUES), height, width), dtype=np.float32)
    fractions[TISSUE["air"]] = 1
    paint(fractions, rectangle(shape, 6.5, 0, width - 6.5, height), "fat")
    paint(fractions, rectangle(shape, 14.5, 0, width - 14.5, height), "soft")
    depth, tall = body
    paint(fractions, rectangle(shape, left - 12, 0, left - 4, height), "blood")  # the aorta
    paint(fractions, rectangle(shape, left + depth + 3, 0, left + depth + 15, height), "canal")
    paint(fractions, rectangle(shape, left + depth + 17, 0, left + depth + 30, height), "posterior")
    paint(fractions, rectangle(shape, left, top - disc, left + depth, top + count * (tall + disc)), "disc")
    bodies = []
    for i in range(count):  # the bodies over the disc column: each body is all the cancellous bone where it is
        y = top + i * (tall + disc)
        weight = rectangle(shape, left, y, left + depth, y + tall)
        paint(fractions, weight, "cancellous")
        bodies.append(SlabBody(f"L{i + 1}", weight))
    return AnatomySlab(fractions, tuple(bodies), pixel_mm)


def rectangle_of(slab_body_index: int, **column) -> tuple[float, float, float, float]:
    """The (x1, y1, x2, y2) of body ``slab_body_index`` of :func:`column_slab` with the same arguments."""
    left, top = column.get("left", 80.25), column.get("top", 30.5)
    depth, tall = column.get("body", (48.0, 40.0))
    y = top + slab_body_index * (tall + column.get("disc", 10.0))
    return left, y, left + depth, y + tall


def busy_slab(shape: tuple[int, int] = (512, 512), bodies: int = 20, pixel_mm: float = 0.8) -> AnatomySlab:
    """A full-size slab with every tissue present and ``bodies`` bodies, for timing."""
    tall = (shape[0] - 20) / bodies * 0.75
    slab = column_slab(shape, pixel_mm, bodies, (60.0, tall), tall / 3, 200.25, 8.5)
    fractions = slab.fractions.copy()
    rng = np.random.default_rng(0)
    for name in ("organ", "lung", "gas", "bowel", "bone", "calcification", "metal", "cement"):
        x, y = rng.uniform(20, shape[1] - 120), rng.uniform(20, shape[0] - 120)
        paint(fractions, rectangle(shape, x, y, x + rng.uniform(10, 100), y + rng.uniform(10, 100)), name)
    return slab.with_changes(fractions=fractions)

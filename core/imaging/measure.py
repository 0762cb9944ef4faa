"""Measurements on a slice, as a PACS viewer makes them: a distance, and the statistics of a region of interest
(mean, standard deviation, area) over the slice's own values (HU for CT), never the windowed display.

Coordinates are image pixels with pixel edges at whole numbers: pixel (row r, column c) covers [c, c + 1) x
[r, r + 1) and its centre is (c + 0.5, r + 0.5). A pixel belongs to a region when its centre lies inside it.
Spacing is (row mm, column mm), as :attr:`SliceImage.spacing_mm`; without it, lengths are in pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from core.imaging.image import SliceImage

ROI_SHAPES = ("ellipse", "rectangle")


def distance_mm(start: tuple[float, float], end: tuple[float, float],
                spacing_mm: tuple[float, float] | None) -> float | None:
    """The length from ``start`` to ``end`` (x, y pixels) in mm; None without a pixel spacing."""
    if spacing_mm is None:
        return None
    row_mm, col_mm = spacing_mm
    return math.hypot((end[0] - start[0]) * col_mm, (end[1] - start[1]) * row_mm)


def distance_text(start: tuple[float, float], end: tuple[float, float],
                  spacing_mm: tuple[float, float] | None) -> str:
    """``23.4 mm``, or ``41.0 px`` when the pixel spacing is not known."""
    mm = distance_mm(start, end, spacing_mm)
    if mm is not None:
        return f"{mm:.1f} mm"
    return f"{math.hypot(end[0] - start[0], end[1] - start[1]):.1f} px"


@dataclass(frozen=True)
class RoiStats:
    """``mean`` and ``sd`` (sample standard deviation) of the finite values in the region; ``count`` pixels;
    ``area`` in mm² (px² without a pixel spacing, ``area_unit`` says which): the pixels counted times one pixel's
    area. ``unit`` is ``HU`` for CT, else empty (the file's grey values)."""

    mean: float
    sd: float
    minimum: float
    maximum: float
    count: int
    area: float
    area_unit: str
    unit: str

    def lines(self) -> list[str]:
        if not self.count:
            return ["no pixels inside"]
        unit = f" {self.unit}" if self.unit else ""
        return [f"Mean {self.mean:.1f}{unit}", f"SD {self.sd:.1f}{unit}", f"Area {self.area:.1f} {self.area_unit}"]


def roi_mask(shape: tuple[int, int], rect: tuple[float, float, float, float], kind: str = "ellipse") -> np.ndarray:
    """A boolean mask of ``shape`` (rows, columns): the pixels whose centres lie in the ellipse inscribed in
    ``rect`` (x0, y0, x1, y1), or in ``rect`` itself for ``rectangle``."""
    if kind not in ROI_SHAPES:
        raise ValueError(f"a region of interest is one of {', '.join(ROI_SHAPES)}, not {kind!r}")
    x0, x1 = sorted((rect[0], rect[2]))
    y0, y1 = sorted((rect[1], rect[3]))
    rows, cols = shape
    mask = np.zeros(shape, dtype=bool)
    # only the pixels whose centres can be inside: c + 0.5 in [x0, x1]
    c0, c1 = max(0, math.ceil(x0 - 0.5)), min(cols, math.floor(x1 - 0.5) + 1)
    r0, r1 = max(0, math.ceil(y0 - 0.5)), min(rows, math.floor(y1 - 0.5) + 1)
    if c0 >= c1 or r0 >= r1 or x1 <= x0 or y1 <= y0:
        return mask
    if kind == "rectangle":
        mask[r0:r1, c0:c1] = True
        return mask
    a, b = (x1 - x0) / 2, (y1 - y0) / 2
    xs = (np.arange(c0, c1) + 0.5 - (x0 + a)) / a
    ys = (np.arange(r0, r1) + 0.5 - (y0 + b)) / b
    mask[r0:r1, c0:c1] = ys[:, None] ** 2 + xs[None, :] ** 2 <= 1.0
    return mask


def roi_stats(image: SliceImage, rect: tuple[float, float, float, float], kind: str = "ellipse") -> RoiStats:
    """The statistics of ``image``'s own values inside the region (see :func:`roi_mask`); NaN values are left out."""
    values = np.asarray(image.pixels)[roi_mask(image.pixels.shape, rect, kind)].astype(np.float64)
    values = values[np.isfinite(values)]
    count = int(values.size)
    if image.spacing_mm is not None:
        pixel_area, area_unit = image.spacing_mm[0] * image.spacing_mm[1], "mm²"
    else:
        pixel_area, area_unit = 1.0, "px²"
    unit = "HU" if image.hu else ""
    if not count:
        nan = float("nan")
        return RoiStats(nan, nan, nan, nan, 0, 0.0, area_unit, unit)
    sd = float(values.std(ddof=1)) if count > 1 else 0.0
    return RoiStats(float(values.mean()), sd, float(values.min()), float(values.max()), count, count * pixel_area,
                    area_unit, unit)


def slice_position_mm(image: SliceImage) -> float | None:
    """Where the slice lies across the body (left-right, RAS x in mm) when its geometry says so, else None."""
    if image.plane is not None:
        return image.plane.position_mm
    return image.position_mm

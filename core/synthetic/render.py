"""Rendering one sagittal slice of a phantom case in HU, with its truth boxes.

The slice at left-right offset ``x`` (mm from the spine's midline) is drawn from analytic shapes: soft tissue layers
around the spine, the spinal canal and posterior elements, discs, and the vertebral bodies with cortical shell,
endplates, cancellous bone and their diseases. Then the reconstruction kernel blurs it and correlated noise is added.
Image coordinates are millimetres from the top-left corner: x to the right is posterior, y down is inferior.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from core.annotations.model import Disease
from core.synthetic.canvas import Canvas, smooth_noise
from core.synthetic.case import PhantomCase
from core.synthetic.spine_render import Streak, draw_body, draw_discs, draw_streaks, posterior_parts
from core.synthetic.tissue import TissueBase

MIN_BOX_VISIBLE = 0.5  # a body is boxed when at least half of its height is in the image
MIN_DEPTH_FRACTION = 0.3  # … and the slice cuts at least 30 % of its depth


@dataclass(frozen=True)
class TruthBox:
    """A vertebra's truth on one slice: its tight box in pixels, level and the diseases visible there."""

    level: str
    box: tuple[float, float, float, float]
    diseases: frozenset[Disease]


@dataclass
class RenderedSlice:
    hu: np.ndarray
    boxes: list[TruthBox]
    offset_mm: float
    labels: np.ndarray | None = None  # body index + 1 where a body is (for tests), when asked for


# -- the slice --------------------------------------------------------------------------------------------------------
_MARGIN = 64  # noise fields are this much larger than the image; each slice takes a window shifted by ≥ 3 px


class CaseRenderer:
    """Renders the slices of one case. Texture fields are made once per case; each slice sees another window of
    them, so neighbouring slices differ as real ones do."""

    def __init__(self, case: PhantomCase, rng: np.random.Generator) -> None:
        self.case = case
        size = (case.height_px + _MARGIN, case.width_px + _MARGIN)
        self._mottle = smooth_noise(*size, 10, rng)
        self._texture = smooth_noise(*size, 2, rng)
        site = case.site
        white = rng.standard_normal(size, dtype=np.float32)
        self._grain = ndimage.gaussian_filter(white, site.noise_grain_px, mode="wrap")
        self._grain *= np.float32(site.noise_hu * 2.0 * site.noise_grain_px * np.sqrt(np.pi))
        self._tissue = TissueBase(case, self._window(self._mottle, 0))
        layout = Canvas(case.height_px, case.width_px, case.spacing_mm)
        self._parts = [
            p for shape in (*case.spine.vertebrae, *case.sacral) for p in posterior_parts(layout, case, shape)
        ]

    def _window(self, field: np.ndarray, number: int) -> np.ndarray:
        dy, dx = (number * 19) % _MARGIN, (number * 37) % _MARGIN
        return field[dy : dy + self.case.height_px, dx : dx + self.case.width_px]

    def render(self, x_mm: float, *, number: int = 0, labels: bool = False) -> RenderedSlice:
        """The slice at left-right offset ``x_mm`` in HU, with the truth boxes of the vertebrae it shows."""
        case = self.case
        canvas = Canvas(case.height_px, case.width_px, case.spacing_mm)
        label_map = np.zeros((case.height_px, case.width_px), dtype=np.int16) if labels else None
        self._tissue.draw(canvas, x_mm, self._window(self._mottle, number))
        for part in self._parts:
            part.draw(canvas, x_mm)
        draw_discs(canvas, case, x_mm)
        streaks: list[Streak] = []
        for index, shape in enumerate((*case.spine.vertebrae, *case.sacral), start=1):
            draw_body(canvas, case, shape, case.disease_of(shape.level), x_mm, label_map, index, streaks)
        draw_streaks(canvas, streaks)
        _finish(canvas, case, self._window(self._texture, number + 7), self._window(self._grain, number + 3))
        return RenderedSlice(canvas.hu, truth_boxes(case, x_mm), x_mm, label_map)


def _finish(canvas: Canvas, case: PhantomCase, texture: np.ndarray, grain: np.ndarray) -> None:
    """Trabecular texture, the kernel's blur, correlated scanner noise and the site's calibration offset."""
    site = case.site
    canvas.hu += canvas.cancellous * texture * 45.0
    hu = ndimage.gaussian_filter(canvas.hu, site.kernel_blur_px, mode="nearest")
    hu += grain
    hu += np.float32(site.hu_offset)
    np.clip(hu, -1024.0, 3071.0, out=hu)
    canvas.hu = hu


def truth_boxes(case: PhantomCase, x_mm: float) -> list[TruthBox]:
    """The boxed vertebrae of the slice at ``x_mm``: tight body boxes in pixels, with the diseases visible there."""
    s = case.spacing_mm
    width, height = case.width_px, case.height_px
    boxed = case.boxed_levels()
    result = []
    for shape in case.spine.vertebrae:
        if shape.level not in boxed or shape.depth_at(x_mm) < MIN_DEPTH_FRACTION * shape.depth:
            continue
        box = shape.box(x_mm)
        if box is None:
            continue
        x1, y1, x2, y2 = (v / s for v in box)
        clipped = (max(0.0, x1), max(0.0, y1), min(float(width), x2), min(float(height), y2))
        if clipped[3] - clipped[1] < MIN_BOX_VISIBLE * (y2 - y1) or clipped[2] <= clipped[0]:
            continue
        diseases = case.disease_of(shape.level).visible_diseases(x_mm, case.site.thickness_mm)
        result.append(TruthBox(shape.level, clipped, diseases))
    return result

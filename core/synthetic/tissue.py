"""Soft tissue around the spine: skin, fat, muscle, the chest (mediastinum, lungs) and the abdomen (bowel, gas),
and the aorta. What does not depend on the slice's left-right position is drawn once per case."""

from __future__ import annotations

import numpy as np

from core.synthetic.anatomy import is_thoracic
from core.synthetic.canvas import Canvas, ellipse
from core.synthetic.case import PhantomCase

AIR, FAT, MUSCLE, SOFT, LUNG, BOWEL, GAS, BLOOD = -1000.0, -95.0, 50.0, 38.0, -850.0, 22.0, -950.0, 42.0


def _spine_axis(case: PhantomCase, ys: np.ndarray) -> np.ndarray:
    """x (mm) of the spine's axis at each height, extended linearly beyond the first and last bodies."""
    centres = np.array([v.centre for v in (*case.spine.vertebrae, *case.sacral[:1])])
    cy, cx = centres[:, 1], centres[:, 0]
    axis = np.interp(ys, cy, cx)
    top_slope = (cx[1] - cx[0]) / (cy[1] - cy[0])
    bottom_slope = (cx[-1] - cx[-2]) / (cy[-1] - cy[-2])
    axis = np.where(ys < cy[0], cx[0] + (ys - cy[0]) * top_slope, axis)
    return np.where(ys > cy[-1], cx[-1] + (ys - cy[-1]) * bottom_slope, axis)


def diaphragm_y(case: PhantomCase) -> float:
    bodies = case.spine.vertebrae
    thoracic = [v for v in bodies if is_thoracic(v.level)]
    if not thoracic:
        return -1e9
    if all(is_thoracic(v.level) for v in bodies):
        return 1e9
    return thoracic[-1].centre[1] - 20.0


class TissueBase:
    """The soft tissue of a case, less what depends on the left-right position (lungs, aorta, gas)."""

    def __init__(self, case: PhantomCase, mottle: np.ndarray) -> None:
        self.case = case
        h, s = case.habitus, case.spacing_mm
        height, width = case.height_px, case.width_px
        self.ys = (np.arange(height, dtype=np.float32) + 0.5) * s
        xs = (np.arange(width, dtype=np.float32) + 0.5) * s
        self.axis = _spine_axis(case, self.ys).astype(np.float32)
        self.forward = self.axis[:, None] - xs[None, :]  # mm anterior of the spine's axis
        # The skin does not follow every bend of the spine: it follows mostly the axis's straight-line trend.
        trend = np.polyval(np.polyfit(self.ys, self.axis, 1), self.ys).astype(np.float32)
        skin_forward = (0.35 * self.axis + 0.65 * trend)[:, None] - xs[None, :]
        self.diaphragm = diaphragm_y(case)
        chest = 1.0 / (1.0 + np.exp(np.clip((self.ys - self.diaphragm) / 12.0, -50, 50)))
        anterior_skin = (chest * h.anterior_skin_thorax + (1 - chest) * h.anterior_skin_abdomen)[:, None]
        self.depth = 30.0 * case.skeleton.size
        hu = np.full((height, width), AIR, dtype=np.float32)
        inside = (skin_forward < anterior_skin) & (skin_forward > -h.posterior_skin)
        hu[inside] = FAT
        hu[(skin_forward > -h.posterior_skin + h.posterior_fat) & (self.forward < -self.depth / 2)] = MUSCLE
        hu[np.abs(self.forward) <= self.depth / 2] = SOFT  # prevertebral and paravertebral soft tissue
        wall_inner = anterior_skin - h.anterior_fat - 12
        hu[(skin_forward > wall_inner) & (skin_forward < anterior_skin - h.anterior_fat)] = MUSCLE
        cavity = (self.forward > self.depth / 2) & (skin_forward < wall_inner)
        in_chest = (self.ys < self.diaphragm)[:, None]
        self.abdomen = cavity & ~in_chest
        self.thorax = cavity & in_chest
        # The heart fills the lower front of the chest; lung shows in front of the spine only above it.
        chest_top, chest_bottom = float(self.ys[0]), min(self.diaphragm, float(self.ys[-1]) + 200.0)
        self.heart_top = chest_top + 0.45 * (chest_bottom - chest_top)
        hu[self.abdomen] = np.where(mottle[self.abdomen] > 0.7, FAT, BOWEL + 12 * mottle[self.abdomen])
        hu[self.thorax] = SOFT + 8 * mottle[self.thorax]
        self.hu = hu
        lumbar_end = max((v.centre[1] for v in case.spine.vertebrae if v.level in ("L4", "L5")), default=1e9)
        self.aorta_rows = self.ys < lumbar_end
        self._calcified = np.random.default_rng(abs(int(h.aorta_x * 1000))).random(hu.shape, dtype=np.float32) > 0.93

    def draw(self, canvas: Canvas, x_mm: float, mottle: np.ndarray) -> None:
        """The soft tissue of the slice at ``x_mm`` onto ``canvas``."""
        np.copyto(canvas.hu, self.hu)
        lung_gap = max(15.0, 110.0 - 5.0 * abs(x_mm))
        ahead = self.forward - (self.depth / 2 + lung_gap) + 12.0 * mottle  # an irregular, not a straight, border
        lung = self.thorax & (ahead > 0) & (self.ys[:, None] < self.heart_top + 0.5 * ahead)
        canvas.hu[lung] = LUNG + 40 * mottle[lung]
        self._aorta(canvas, x_mm)
        self._gas(canvas, x_mm)

    def _aorta(self, canvas: Canvas, x_mm: float) -> None:
        h = self.case.habitus
        dx = x_mm - h.aorta_x
        if abs(dx) >= h.aorta_radius:
            return
        half = np.sqrt(h.aorta_radius**2 - dx * dx)
        near = self.depth / 2 + 3 + h.aorta_radius
        offset = np.abs(self.forward - near)
        canvas.hu[(offset < half) & self.aorta_rows[:, None]] = BLOOD
        if h.aortic_calcification > 0.5 and half > 0.8 * h.aorta_radius:
            wall = (np.abs(offset - half) < 1.0) & self.aorta_rows[:, None] & self._calcified
            canvas.hu[wall] = 450.0

    def _gas(self, canvas: Canvas, x_mm: float) -> None:
        s = canvas.spacing
        for y_frac, ahead, x_blob, radius in self.case.habitus.gas:
            dx = x_mm - x_blob
            if abs(dx) >= radius:
                continue
            r = float(np.sqrt(radius * radius - dx * dx))
            y_blob = float(self.ys[0] + y_frac * (self.ys[-1] - self.ys[0]))
            row = int(y_blob / s)
            if y_blob < self.diaphragm + 30 or not 0 <= row < canvas.height:
                continue
            ellipse(
                canvas, (float(self.axis[row] - self.depth / 2 - ahead), y_blob), r, r * 0.8, GAS, mask=self.abdomen
            )

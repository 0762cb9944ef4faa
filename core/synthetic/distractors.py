"""Distractors of the appearance step: things on real CT that a detector trained on clean phantoms takes for
vertebrae, or that hide them. Each is drawn into an image in HU, at random places, from an :class:`AnatomySlab`:

- ``metal``: a small dense object inside the body with bright and dark streaks through it, fading with distance;
- ``aorta``: calcified plaques on the edge of the blood within 40 mm anterior of the spine (the aortic wall);
- ``gas``: gas blobs in the bowel, a random share of it, with exact partial volume;
- ``beam``: beam-hardening-like dark bands between two dense bones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

from core.synthetic.random_fields import bounding_box, smooth_field, uniform
from core.synthetic.slab import TISSUE, AnatomySlab

if TYPE_CHECKING:
    from core.synthetic.appearance import Appearance, AppearanceRanges

DISTRACTORS: tuple[str, ...] = ("metal", "aorta", "gas", "beam")
AORTA_REACH_MM = 40.0  # how far anterior of the spine's front a calcified wall is drawn
BEAM_GAP_MM = 15.0  # the least distance between the two bones a dark band joins


def draw_distractors(
    hu: np.ndarray, slab: AnatomySlab, names: frozenset[str], look: Appearance, ranges: AppearanceRanges, rng
) -> None:
    """Draw the distractors ``names`` (of :data:`DISTRACTORS`) into ``hu``, in the order of DISTRACTORS."""
    drawers = {"metal": metal_streaks, "aorta": calcified_aorta, "gas": bowel_gas, "beam": beam_hardening}
    for name in DISTRACTORS:
        if name in names:
            drawers[name](hu, slab, look, ranges, rng)


def _window(shape: tuple[int, int], centre: tuple[float, float], reach: float):
    """The slices of the image within ``reach`` pixels of ``centre`` (y, x), and each pixel's offsets dy, dx from it
    (a column and a row)."""
    y0, y1 = max(int(centre[0] - reach), 0), min(int(centre[0] + reach) + 1, shape[0])
    x0, x1 = max(int(centre[1] - reach), 0), min(int(centre[1] + reach) + 1, shape[1])
    dy = np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(centre[0])
    dx = np.arange(x0, x1, dtype=np.float32)[None, :] - np.float32(centre[1])
    return (slice(y0, y1), slice(x0, x1)), dy, dx


def _random_pixel(mask: np.ndarray, rng: np.random.Generator, tries: int = 64) -> tuple[int, int] | None:
    """A pixel of ``mask`` found among ``tries`` random ones, or None."""
    ys, xs = rng.integers(0, mask.shape[0], tries), rng.integers(0, mask.shape[1], tries)
    hits = np.flatnonzero(mask[ys, xs])
    return (int(ys[hits[0]]), int(xs[hits[0]])) if hits.size else None


def metal_streaks(hu: np.ndarray, slab: AnatomySlab, look: Appearance, ranges: AppearanceRanges, rng) -> None:
    """A metal disc inside the body; streaks (lines through it) of random angle, sign and width fade from it."""
    centre = _random_pixel(slab.tissue("air") < 0.5, rng)
    if centre is None:
        return
    radius = uniform(rng, ranges.metal_mm) / slab.pixel_mm
    length = uniform(rng, ranges.streak_mm) / slab.pixel_mm
    metal = np.float32(uniform(rng, ranges.metal_hu))
    count = int(rng.integers(int(ranges.streak_count[0]), int(ranges.streak_count[1]) + 1))
    angles = rng.uniform(0.0, np.pi, count)
    amplitudes = rng.uniform(*ranges.streak_hu, count) * rng.choice([-1.0, 1.0], count)
    widths = rng.uniform(*ranges.streak_px, count)
    box, dy, dx = _window(hu.shape, centre, 3 * length + radius + 1)
    distance = np.sqrt(dy**2 + dx**2)
    inside = np.clip(radius + 0.5 - distance, 0.0, 1.0)
    streaks = np.zeros(inside.shape, dtype=np.float32)
    for angle, amplitude, width in zip(angles, amplitudes, widths, strict=True):
        across = (dy * np.float32(np.cos(angle)) - dx * np.float32(np.sin(angle))) / np.float32(width)
        streaks += np.float32(amplitude) * np.maximum(1.0 - across**2, 0.0)
    fade = np.exp(-distance / np.float32(length)) * (1.0 - inside)
    hu[box] = hu[box] * (1.0 - inside) + inside * metal + streaks * fade


def calcified_aorta(hu: np.ndarray, slab: AnatomySlab, look: Appearance, ranges: AppearanceRanges, rng) -> None:
    """Plaques at calcification HU on a random share of the blood's edge (≈ 1 mm) within 40 mm anterior of the
    spine's front (anterior is left); nothing where the slab has no spine or no blood there."""
    spine = slab.tissue("cancellous") + slab.tissue("disc") + slab.tissue("cement") >= 0.5
    rows = np.flatnonzero(spine.any(axis=1))
    depth = max(round(1.0 / slab.pixel_mm), 1)
    box = bounding_box(slab.tissue("blood") >= 0.5, depth + 1)  # a margin, so the wall is eroded from outside
    if not rows.size or box is None:
        return
    front = np.interp(np.arange(box[0].start, box[0].stop), rows, spine[rows].argmax(axis=1)).astype(np.float32)
    ahead = front[:, None] - np.arange(box[1].start, box[1].stop, dtype=np.float32)[None, :]  # px anterior of it
    blood = slab.tissue("blood")[box] >= 0.5
    wall = blood & ~ndimage.binary_erosion(blood, iterations=depth, border_value=1)
    wall &= (ahead > 0) & (ahead < AORTA_REACH_MM / slab.pixel_mm)
    if not wall.any():
        return
    field = smooth_field(wall.shape, uniform(rng, ranges.plaque_mm) / slab.pixel_mm, rng)
    threshold = np.float32(np.quantile(field[wall], 1.0 - uniform(rng, ranges.plaque_share)))
    plaque = wall & (field >= threshold)
    hu[box][plaque] = np.float32(uniform(rng, ranges.calcification_hu))


def bowel_gas(hu: np.ndarray, slab: AnatomySlab, look: Appearance, ranges: AppearanceRanges, rng) -> None:
    """Blobs of gas (the case's gas HU) over a random share of the bowel, in place of its content."""
    bowel = slab.tissue("bowel")
    box = bounding_box(bowel > 0)
    if box is None:
        return
    field = smooth_field(bowel[box].shape, uniform(rng, ranges.gas_mm) / 2 / slab.pixel_mm, rng)
    threshold = np.float32(np.quantile(field[bowel[box] > 0], 1.0 - uniform(rng, ranges.gas_share)))
    blobs = np.clip((field - threshold) * np.float32(4.0) + np.float32(0.5), 0.0, 1.0)  # soft-edged
    change = look.tissue_hu[TISSUE["gas"]] - look.tissue_hu[TISSUE["bowel"]]
    hu[box] += np.float32(change) * blobs * bowel[box]


def beam_hardening(hu: np.ndarray, slab: AnatomySlab, look: Appearance, ranges: AppearanceRanges, rng) -> None:
    """One to three dark bands (Gaussian across, ``beam_hu`` deep) each joining two dense bone pixels at least
    BEAM_GAP_MM apart."""
    dense = sum(slab.tissue(name) for name in ("cancellous", "posterior", "bone", "cement", "metal")) >= 0.9
    ys, xs = np.nonzero(dense)
    for _ in range(int(rng.integers(1, 4))):
        if ys.size < 2:
            return
        picks = rng.integers(0, ys.size, (16, 2))
        gaps = np.hypot(ys[picks[:, 0]] - ys[picks[:, 1]], xs[picks[:, 0]] - xs[picks[:, 1]]) * slab.pixel_mm
        good = np.flatnonzero(gaps >= BEAM_GAP_MM)
        if not good.size:
            continue
        start, end = picks[good[0]]
        width = uniform(rng, ranges.beam_mm) / slab.pixel_mm
        _dark_band(hu, (ys[start], xs[start]), (ys[end], xs[end]), width, uniform(rng, ranges.beam_hu))


def _dark_band(hu: np.ndarray, start, end, width: float, depth: float) -> None:
    """Lower ``hu`` by ``depth`` · exp(-d² / 2 width²), d the distance to the segment from ``start`` to ``end``."""
    middle = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
    reach = np.hypot(end[0] - start[0], end[1] - start[1]) / 2 + 3 * width
    box, dy, dx = _window(hu.shape, middle, reach)
    along_y, along_x = np.float32((end[0] - start[0]) / 2), np.float32((end[1] - start[1]) / 2)
    t = np.clip((dy * along_y + dx * along_x) / (along_y**2 + along_x**2), -1.0, 1.0)
    distance2 = (dy - t * along_y) ** 2 + (dx - t * along_x) ** 2
    hu[box] -= np.float32(depth) * np.exp(-distance2 / np.float32(2 * width**2))

"""The body around the spine on an anatomy slab: fat and soft tissue inside the body's outline, air outside, and,
where the label map has only vertebrae (VerSe), the rest drawn at random: the aorta in front of the spine, organs
and bowel in the abdomen, lung in the chest, the paraspinal muscles behind.

Sagittal slabs: superior is up, anterior is left (columns grow to the back).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from core.synthetic.random_fields import smooth_field
from core.synthetic.slab import TISSUE, AnatomySlab


def _unlabelled(fractions: np.ndarray) -> np.ndarray:
    return fractions[TISSUE["air"]] > 0.5


def _fill(fractions: np.ndarray, where: np.ndarray, tissue: str) -> None:
    """Give the unlabelled share of ``where``'s pixels to ``tissue``."""
    air = TISSUE["air"]
    fractions[TISSUE[tissue]][where] += fractions[air][where]
    fractions[air][where] = 0.0


def _within(mask: np.ndarray, mm: float, pixel_mm: float) -> np.ndarray:
    """Pixels within ``mm`` of ``mask`` (a dilation by distance)."""
    if not mask.any():
        return mask
    return ndimage.distance_transform_edt(~mask) * pixel_mm <= mm


def whole_body(slab: AnatomySlab, rng: np.random.Generator) -> AnatomySlab:
    """A map with the organs: the outline closes around every labelled structure, plus a layer of fat (worked out
    at a quarter of the resolution: an outline needs no finer detail)."""
    fractions = slab.fractions.copy()
    labelled = ~_unlabelled(fractions)
    coarse, step = labelled[::4, ::4], slab.pixel_mm * 4
    closed = ndimage.binary_fill_holes(~_within(~_within(coarse, 20.0, step), 20.0, step))
    outline = _within(closed, rng.uniform(3.0, 25.0), step)
    body = np.repeat(np.repeat(outline, 4, axis=0), 4, axis=1)[: labelled.shape[0], : labelled.shape[1]] | labelled
    _inside_body(fractions, body, slab.pixel_mm, rng)
    return slab.with_changes(fractions=fractions)


def _inside_body(fractions: np.ndarray, body: np.ndarray, pixel_mm: float, rng: np.random.Generator) -> None:
    """Unlabelled pixels of the body: subcutaneous fat at the edge, fat and soft tissue mixed inside."""
    free = _unlabelled(fractions) & body
    depth = np.repeat(np.repeat(ndimage.distance_transform_edt(body[::2, ::2]) * 2 * pixel_mm, 2, 0), 2, 1)
    depth = depth[: body.shape[0], : body.shape[1]]
    skin = free & (depth < rng.uniform(1.0, 3.0))
    subcutaneous = free & ~skin & (depth < rng.uniform(5.0, 30.0))
    texture = smooth_field(body.shape, max(2.0, 12.0 / pixel_mm), rng)
    fatty = texture < np.quantile(texture, rng.uniform(0.2, 0.7))
    _fill(fractions, skin, "soft")
    _fill(fractions, subcutaneous, "fat")
    _fill(fractions, free & ~skin & ~subcutaneous & fatty, "fat")
    _fill(fractions, free & ~skin & ~subcutaneous & ~fatty, "soft")


def around_the_spine(slab: AnatomySlab, rng: np.random.Generator) -> AnatomySlab:
    """A map with vertebrae only: pad it to a torso's size and draw the body around the spine."""
    pad_front = round(rng.uniform(70.0, 170.0) / slab.pixel_mm)
    pad_back = round(rng.uniform(35.0, 70.0) / slab.pixel_mm)
    pad_rows = round(rng.uniform(0.0, 30.0) / slab.pixel_mm)
    padding = ((pad_rows, pad_rows), (pad_front, pad_back))
    fractions = np.stack([np.pad(f, padding, constant_values=1.0 if k == TISSUE["air"] else 0.0)
                          for k, f in enumerate(slab.fractions)])
    bodies = tuple(b.__class__(b.name, np.pad(b.fraction, padding), b.diseases, b.grade) for b in slab.bodies)
    spine = (fractions[TISSUE["cancellous"]] + fractions[TISSUE["posterior"]]) > 0.5
    rows = np.flatnonzero(spine.any(axis=1))
    columns = np.arange(spine.shape[1])
    front = _smooth_edge(np.where(spine, columns, spine.shape[1]).min(axis=1), rows)
    back = _smooth_edge(np.where(spine, columns, -1).max(axis=1), rows)
    anterior_wall = front - rng.uniform(60.0, 160.0) / slab.pixel_mm
    posterior_wall = back + rng.uniform(25.0, 60.0) / slab.pixel_mm
    body = (columns[None, :] >= anterior_wall[:, None]) & (columns[None, :] <= posterior_wall[:, None])
    pixel = slab.pixel_mm
    _aorta(fractions, front, rng, pixel)
    _viscera(fractions, body, front, bodies, rng, pixel)
    behind = body & (columns[None, :] > back[:, None]) & _unlabelled(fractions)
    _fill(fractions, behind & (columns[None, :] < (back + rng.uniform(15, 40) / pixel)[:, None]), "soft")
    _inside_body(fractions, body, pixel, rng)
    return slab.with_changes(fractions=fractions, bodies=bodies)


def _smooth_edge(edge: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The spine's front or back edge for every row: interpolated where the spine is, extended beyond, smoothed."""
    values = np.interp(np.arange(len(edge)), rows, edge[rows]).astype(np.float64)
    return ndimage.gaussian_filter1d(values, sigma=max(3.0, len(edge) / 40), mode="nearest")


def _aorta(fractions: np.ndarray, front: np.ndarray, rng: np.random.Generator, pixel: float) -> None:
    """A vertical vessel a few mm in front of the bodies (drawn on about two slabs in three)."""
    if rng.random() > 0.65:
        return
    columns = np.arange(fractions.shape[2])
    gap, width = rng.uniform(1.0, 8.0) / pixel, rng.uniform(14.0, 26.0) / pixel
    vessel = (columns[None, :] < (front - gap)[:, None]) & (columns[None, :] >= (front - gap - width)[:, None])
    _fill(fractions, vessel & _unlabelled(fractions), "blood")


def _viscera(fractions: np.ndarray, body: np.ndarray, front: np.ndarray, bodies: tuple,
             rng: np.random.Generator, pixel: float) -> None:
    """Lung above a diaphragm when the spine is thoracic; organs and bowel as blobs in front of the spine."""
    height, width = body.shape
    thoracic = [b for b in bodies if b.name.startswith("T")]
    rows = np.arange(height)
    anterior = body & (np.arange(width)[None, :] < (front - 25.0 / pixel)[:, None])
    if thoracic:
        last = thoracic[-1].fraction >= 0.5
        diaphragm = np.flatnonzero(last.any(axis=1))[-1] + rng.uniform(-20.0, 30.0) / pixel
        if diaphragm > 0:
            _fill(fractions, anterior & (rows[:, None] < diaphragm) & _unlabelled(fractions), "lung")
    for _ in range(int(rng.integers(3, 9))):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        ry, rx = rng.uniform(15.0, 60.0) / pixel, rng.uniform(15.0, 50.0) / pixel
        blob = ((rows[:, None] - cy) / ry) ** 2 + ((np.arange(width)[None, :] - cx) / rx) ** 2 <= 1.0
        _fill(fractions, blob & anterior & _unlabelled(fractions), "bowel" if rng.random() < 0.5 else "organ")

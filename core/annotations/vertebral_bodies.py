"""Vertebral bodies from vertebra masks, and one box per body on each sagittal slab (the paper boxes bodies, not
whole vertebrae).

**The body.** With a VerSe subregion map the body is its labels 49 and 50. Otherwise it is the part of the vertebra
in front of the spinal canal. The canal's front is found on the vertebra's axial planes in two ways: the largest
hole that the ring of the vertebra encloses (where the ring is closed, at the pedicles), or, on the band of voxels
2 mm either side of the vertebra's midline, the anterior edge of a gap of at least 3 mm between the body and the
posterior elements. A hole or gap needs 10 mm of vertebra in front of it, and the holes of each sagittal section
are filled first, so that a body segmented as its cortical shell is solid and its hollow inside is not taken for
the canal. A straight line through the fronts along the spine's axis (of the lines through two fronts, the one that
most others lie within 4 mm of, refitted on those) follows the body's tilt; the body is the vertebra in front of
it (its largest connected piece). Where a vertebra shows no canal at all (a partial mask), the fronts of its
neighbours are interpolated; with none anywhere the whole vertebra is kept, and the import says so.

**The slab rule.** A body gets a box on a slab when the slab cuts at least :data:`MIN_SECTION` (40 %) of its
largest sagittal section, and the box is the body's extent where at least half of the slab's thickness is body. A
body that touches the first or the last axial plane of the scan is cut off by the field of view: it keeps its boxes
while its height in the scan is at least :data:`MIN_CUT_OFF_HEIGHT` (60 %) of its depth (the median front-to-back
extent of its axial sections; a vertebral body is about as tall as it is deep), and gets none otherwise. Two boxes
on one slab that hit (IoM > 0.5) are one vertebra: the body covering more of the slab keeps it, so a mislabelled
piece of one vertebra inside another does not become a box of its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from core.annotations.geometry import pair_by_iom
from core.annotations.model import LEVELS, Box
from core.imaging.reformat import SagittalReformat
from core.imaging.vertebra_masks import VertebraMasks

MIN_SECTION = 0.4
#: A body cut off by the scan keeps its boxes while it shows at least this much of its depth in height.
MIN_CUT_OFF_HEIGHT = 0.6
#: The smallest canal hole (mm²) and the narrowest canal gap (mm) that count as the canal.
MIN_CANAL_AREA_MM2 = 20.0
MIN_CANAL_GAP_MM = 3.0
MIDLINE_BAND_MM = 2.0
#: Vertebra in front of a hole or gap (mm) for it to be the canal: less is the hollow inside of a body's shell.
MIN_BODY_DEPTH_MM = 10.0
#: Canal fronts this close (mm) to a line through two others follow the same canal.
FRONT_TOLERANCE_MM = 4.0


@dataclass(frozen=True)
class VertebralBody:
    """One body: its vertebra's name (``T12``, ``L6``, …), its level when it is one of ours, and its mask cropped
    to ``offset`` on the canonical grid."""

    name: str
    mask: np.ndarray
    offset: tuple[int, int, int]
    method: str  # "subregion map", "in front of the canal", "whole vertebra"
    truncated: bool  # it touches the first or the last axial plane of the scan
    largest_section_mm2: float
    height_mm: float  # its extent along the scan's axis
    depth_mm: float  # the median front-to-back extent of its axial sections

    @property
    def boxed(self) -> bool:
        """Whether it gets boxes: whole, or cut off by the scan with enough of it left (see the module)."""
        return not self.truncated or self.height_mm >= MIN_CUT_OFF_HEIGHT * self.depth_mm

    @property
    def level(self) -> str | None:
        return self.name if self.name in LEVELS else None


def _runs(profile: np.ndarray) -> list[tuple[int, int]]:
    edges = np.diff(np.concatenate([[0], profile.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def _canal_front(section: np.ndarray, midline: int, band: int, zoom: np.ndarray) -> float | None:
    """The y (voxel edge) where the canal begins behind the body on one axial section (x, y), or None. A hole or a
    gap counts only with at least :data:`MIN_BODY_DEPTH_MM` of vertebra in front of it, so the hollow inside of a
    body segmented as its shell is not taken for the canal."""
    front_edge = np.flatnonzero(section.any(axis=0)).max() + 1
    deep = round(MIN_BODY_DEPTH_MM / zoom[1])
    holes = ndimage.binary_fill_holes(section) & ~section
    labelled, _ = ndimage.label(holes)
    candidates = []
    for index, where in enumerate(ndimage.find_objects(labelled), start=1):
        area = (labelled[where] == index).sum() * zoom[0] * zoom[1]
        if area >= MIN_CANAL_AREA_MM2 and front_edge - where[1].stop >= deep:
            candidates.append((area, float(where[1].stop)))
    if candidates:
        return max(candidates)[1]
    runs = _runs(section[max(0, midline - band):midline + band + 1].any(axis=0))
    for behind, ahead in zip(runs[-2::-1], runs[:0:-1], strict=False):  # gaps from the front backwards
        if (ahead[0] - behind[1]) * zoom[1] >= MIN_CANAL_GAP_MM and front_edge - ahead[0] >= deep:
            return float(ahead[0])
    return None


def canal_fronts(vertebra: np.ndarray, zoom: np.ndarray) -> list[tuple[float, float]]:
    """(z, y) points of the canal's front on the axial planes of one vertebra's mask (canonical, cropped)."""
    midline = int(np.median(np.nonzero(vertebra)[0]))
    band = max(1, round(MIDLINE_BAND_MM / zoom[0]))
    points = []
    for z in np.flatnonzero(vertebra.any(axis=(0, 1))):
        front = _canal_front(vertebra[:, :, z], midline, band, zoom)
        if front is not None:
            points.append((float(z), front))
    return points


def _front_line(points: list[tuple[float, float]], zs: np.ndarray) -> np.ndarray:
    z, y = np.array(points, dtype=float).T
    if len(points) >= 2 and np.ptp(z) > 0:
        return np.polyval(np.polyfit(z, y, 1), zs)
    return np.full(len(zs), float(np.mean(y)))


def _solid(vertebra: np.ndarray) -> np.ndarray:
    """The mask with the holes of each sagittal section filled: a body segmented as its cortical shell becomes
    solid, while the canal, open above and below within one vertebra, stays open."""
    return np.stack([ndimage.binary_fill_holes(section) for section in vertebra])


def _robust_line(points: list[tuple[float, float]], zs: np.ndarray, zoom_y: float) -> np.ndarray:
    """The line through the most canal fronts within :data:`FRONT_TOLERANCE_MM` of it (every line through two
    fronts is tried), refitted on those: fronts of another hole (a body's hollow inside) are left out."""
    z, y = np.array(points, dtype=float).T
    best = np.ones(len(points), dtype=bool)
    if len(points) >= 3:
        best_count = 0
        for i in range(len(points)):
            for j in range(i, len(points)):
                slope = 0.0 if z[i] == z[j] else (y[j] - y[i]) / (z[j] - z[i])
                inliers = np.abs(y - (y[i] + slope * (z - z[i]))) * zoom_y <= FRONT_TOLERANCE_MM
                if inliers.sum() > best_count:
                    best, best_count = inliers, int(inliers.sum())
    return _front_line([p for p, keep in zip(points, best, strict=True) if keep], zs)


def _largest_piece(mask: np.ndarray) -> np.ndarray:
    labelled, count = ndimage.label(mask)
    if count <= 1:
        return mask
    sizes = ndimage.sum(mask, labelled, range(1, count + 1))
    return labelled == int(np.argmax(sizes)) + 1


def find_bodies(masks: VertebraMasks) -> list[VertebralBody]:
    """Every vertebra's body (see the module's rules), from the top of the spine down."""
    zoom = np.linalg.norm(masks.affine[:3, :3], axis=0)
    objects = ndimage.find_objects(masks.labels)
    crops = {label: objects[label - 1] for label in masks.names if label - 1 < len(objects) and objects[label - 1]}
    solid = {label: _solid(masks.labels[crop] == label) for label, crop in crops.items()}
    fronts = {label: [(z + crop[2].start, y + crop[1].start) for z, y in canal_fronts(solid[label], zoom)]
              for label, crop in crops.items()}
    everywhere = sorted(p for points in fronts.values() for p in points)
    bodies = []
    for label, crop in crops.items():
        vertebra = solid[label]
        if masks.body is not None and (vertebra & masks.body[crop]).any():
            body, method = _largest_piece(vertebra & masks.body[crop]), "subregion map"
        else:
            body, method = _in_front_of_canal(vertebra, crop, fronts[label], everywhere, zoom[1])
        bodies.append(_body(masks, label, crop, body, method, zoom))
    return sorted(bodies, key=lambda b: -(b.offset[2] + b.mask.shape[2] / 2))


def _in_front_of_canal(vertebra: np.ndarray, crop: tuple[slice, ...], points: list[tuple[float, float]],
                       everywhere: list[tuple[float, float]], zoom_y: float) -> tuple[np.ndarray, str]:
    zs = np.arange(crop[2].start, crop[2].stop, dtype=float)
    if points:
        front = _robust_line(points, zs, zoom_y)
    elif everywhere:
        z, y = np.array(everywhere, dtype=float).T
        front = np.interp(zs, z, y)
    else:
        return vertebra, "whole vertebra"
    ys = np.arange(crop[1].start, crop[1].stop, dtype=float)
    body = vertebra & (ys[None, :, None] >= np.rint(front)[None, None, :])
    if not body.any():
        return vertebra, "whole vertebra"
    return _largest_piece(body), "in front of the canal"


def _body(masks: VertebraMasks, label: int, crop: tuple[slice, ...], body: np.ndarray, method: str,
          zoom: np.ndarray) -> VertebralBody:
    inner = ndimage.find_objects(body.astype(np.uint8))[0]
    offset = tuple(int(c.start + i.start) for c, i in zip(crop, inner, strict=True))
    tight = body[inner]
    top, bottom = offset[2], offset[2] + tight.shape[2]
    truncated = top == 0 or bottom == masks.labels.shape[2]
    section = float(tight.sum(axis=(1, 2)).max() * zoom[1] * zoom[2])
    present = tight.any(axis=0)  # (y, z)
    depths = [np.ptp(np.flatnonzero(present[:, z])) + 1 for z in range(present.shape[1]) if present[:, z].any()]
    return VertebralBody(masks.names[label], tight, offset, method, truncated, section,  # type: ignore[arg-type]
                         float(tight.shape[2] * zoom[2]), float(np.median(depths) * zoom[1]))


def slab_boxes(reformat: SagittalReformat, bodies: Iterable[VertebralBody], x_index: int,
               thickness_mm: float) -> list[tuple[VertebralBody, Box]]:
    """The bodies that the slab at ``x_index`` shows, each with its box in the slab's pixels (the slab rule), from
    the top down."""
    lo, hi = reformat.slab_range(x_index, thickness_mm)
    _, ny, nz = reformat.volume.shape
    pixel_area = reformat.pixel_mm**2
    found: list[tuple[VertebralBody, Box, int]] = []
    for body in bodies:
        if not body.boxed:
            continue
        start, stop = max(lo, body.offset[0]), min(hi, body.offset[0] + body.mask.shape[0])
        if start >= stop:
            continue
        plane = np.zeros((ny, nz), dtype=np.float32)
        y0, z0 = body.offset[1], body.offset[2]
        section = body.mask[start - body.offset[0]:stop - body.offset[0]].sum(axis=0, dtype=np.float32)
        plane[y0:y0 + body.mask.shape[1], z0:z0 + body.mask.shape[2]] = section / (hi - lo)
        inside = reformat.plane_image(plane, order=1) >= 0.5
        if inside.sum() * pixel_area < MIN_SECTION * body.largest_section_mm2:
            continue
        rows, cols = np.flatnonzero(inside.any(axis=1)), np.flatnonzero(inside.any(axis=0))
        box = Box(float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1))
        found.append((body, box, int(inside.sum())))
    return _one_per_vertebra(found)


def _one_per_vertebra(found: list[tuple[VertebralBody, Box, int]]) -> list[tuple[VertebralBody, Box]]:
    """Two boxes that hit (the paper's rule) are one vertebra: a mislabelled piece of one vertebra inside another
    gives way to the body that covers more of the slab."""
    kept: list[tuple[VertebralBody, Box, int]] = []
    for item in sorted(found, key=lambda f: -f[2]):
        if not any(pair_by_iom([item[1]], [other[1]]) for other in kept):
            kept.append(item)
    return [(body, box) for body, box, _ in sorted(kept, key=lambda f: f[1].y1)]

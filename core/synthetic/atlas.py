"""Anatomy atlases: real label maps (TotalSegmentator's whole-torso classes, VerSe's vertebrae) as tissue classes in
3D, cut into sagittal :class:`~core.synthetic.slab.AnatomySlab` slabs.

- A map with a label table (``structures.csv``: TotalSegmentator's class names) gives every structure a tissue class
  by its name (lungs, vessels, organs, bowel, bones, muscles, the spinal cord). Vertebrae are split into their
  bodies (the segmented-CT import's body rule) and their posterior elements.
- A map with vertebrae only (VerSe, or the T11/T12 labels of the DICOM series) gets the rest of the body drawn on
  each slab: see :mod:`core.synthetic.surroundings`.

On every slab the unlabelled inside of the body is fat and soft tissue, the discs fill the space between
neighbouring bodies, and the spinal canal lies between the bodies and their posterior elements. A body is a truth
body on a slab by the import's slab rule (at least 40 % of its largest sagittal section, where half the slab is
body); a body cut off by the map's edge follows the import's cut-off rule.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from core.annotations.vertebral_bodies import MIN_SECTION, VertebralBody, find_bodies
from core.imaging.image import Volume
from core.imaging.reformat import SagittalReformat
from core.imaging.vertebra_masks import label_table_beside, read_label_table, read_vertebra_masks, vertebra_name
from core.synthetic.slab import TISSUE, TISSUES, AnatomySlab, SlabBody

#: Structure-name fragments → tissue class, first match wins (TotalSegmentator v2 names).
NAME_TISSUES: tuple[tuple[str, str], ...] = (
    ("lung", "lung"), ("trachea", "gas"), ("spinal_cord", "canal"), ("sacrum", "bone"), ("rib", "bone"),
    ("sternum", "bone"), ("costal", "bone"), ("clavic", "bone"), ("scapula", "bone"), ("humerus", "bone"),
    ("hip", "bone"), ("femur", "bone"), ("skull", "bone"), ("heart", "blood"), ("aorta", "blood"),
    ("artery", "blood"), ("vein", "blood"), ("vena", "blood"), ("trunk", "blood"), ("atrial", "blood"),
    ("colon", "bowel"), ("bowel", "bowel"), ("duodenum", "bowel"), ("stomach", "bowel"), ("esophagus", "soft"),
    ("autochthon", "soft"), ("iliopsoas", "soft"), ("gluteus", "soft"), ("muscle", "soft"),
)


def tissue_of(structure: str) -> str:
    """The tissue class a (non-vertebra) structure name means; organs by default."""
    lowered = structure.lower()
    return next((tissue for fragment, tissue in NAME_TISSUES if fragment in lowered), "organ")


@dataclass
class TissueAtlas:
    """Tissue classes of one real label map on its canonical grid, its vertebral bodies, and whether the rest of
    the body is in the map (``whole_body``) or must be drawn around the spine."""

    tissues: np.ndarray  # (x, y, z) uint8 tissue ids
    bodies: list[VertebralBody]
    affine: np.ndarray
    source: Path
    whole_body: bool

    def __post_init__(self) -> None:
        self.tissues = np.ascontiguousarray(self.tissues)  # slabs are runs of x planes
        self._reformat = SagittalReformat(Volume(self.tissues, self.affine, self.source, is_label_map=True))
        self._voxels: np.ndarray | None = None
        self._body_ids = np.zeros(self.tissues.shape, dtype=np.uint8)  # body i + 1 where body i is
        for number, body in enumerate(self.bodies, start=1):
            region = tuple(slice(o, o + n) for o, n in zip(body.offset, body.mask.shape, strict=True))
            self._body_ids[region][body.mask] = number
        voxels = np.concatenate([np.nonzero(b.mask)[0] + b.offset[0] for b in self.bodies]) if self.bodies else []
        self.midline = int(np.median(voxels)) if len(voxels) else self.tissues.shape[0] // 2

    @property
    def x_spacing_mm(self) -> float:
        return float(self._reformat.spacing[0])

    def slab(self, x_index: int, thickness_mm: float) -> AnatomySlab:
        """The sagittal slab at canonical left-right index ``x_index`` as tissue fractions, with its truth bodies."""
        reformat = self._reformat
        lo, hi = reformat.slab_range(x_index, thickness_mm)
        tissue_planes = self._planes(self.tissues[lo:hi])
        body_planes = self._planes(self._body_ids[lo:hi])
        share = np.float32(1.0 / (hi - lo))
        fractions = _shares(tissue_planes, len(TISSUES), share)
        present = np.flatnonzero(np.bincount(body_planes.ravel()))
        present = present[present > 0]
        lookup = np.zeros(len(self.bodies) + 1, dtype=np.intp)
        lookup[present] = np.arange(1, len(present) + 1)
        body_shares = _shares(lookup[body_planes], len(present) + 1, share)
        bodies = []
        for k, number in enumerate(present, start=1):
            body = self.bodies[number - 1]
            section = (body_shares[k] >= 0.5).sum() * reformat.pixel_mm**2
            if body.boxed and section >= MIN_SECTION * body.largest_section_mm2:
                bodies.append(SlabBody(body.name, body_shares[k]))
        return AnatomySlab(fractions, tuple(bodies), reformat.pixel_mm, (hi - lo) * self.x_spacing_mm, str(self.source))

    def _planes(self, stack: np.ndarray) -> np.ndarray:
        """Canonical (y, z) planes as sagittal images, all at once: the reformat's nearest-neighbour resampling
        (:meth:`SagittalReformat.plane_image` with ``order=0``), as one gather."""
        if self._voxels is None:
            probe = np.arange(stack.shape[1] * stack.shape[2], dtype=np.int64).reshape(stack.shape[1:])
            self._voxels = self._reformat.plane_image(probe, order=0)  # which voxel each pixel shows
        return np.take(stack.reshape(len(stack), -1), self._voxels, axis=1)


def _shares(planes: np.ndarray, classes: int, share: np.float32) -> np.ndarray:
    """(classes, H, W): the share of the planes each class covers at each pixel (each plane adds its share at one
    class per pixel)."""
    pixels = planes.shape[1] * planes.shape[2]
    out = np.zeros(classes * pixels, dtype=np.float32)
    where = np.arange(pixels)
    for plane in planes:
        out[plane.ravel().astype(np.intp) * pixels + where] += share
    return out.reshape(classes, *planes.shape[1:])


def build_atlas(masks_path: str | Path, scheme: str | None = None) -> TissueAtlas:
    """A tissue atlas from a label map (any form the segmented-CT import reads)."""
    masks_path = Path(masks_path)
    masks = read_vertebra_masks(masks_path, scheme)
    bodies = find_bodies(masks)
    tissues = np.zeros(masks.labels.shape, dtype=np.uint8)
    table = label_table_beside(masks_path) if masks_path.is_file() else None
    whole_body = False
    if table is not None:
        lookup = np.zeros(int(masks.labels.max()) + 1, dtype=np.uint8)
        for label, name in read_label_table(table).items():
            if label < len(lookup) and (vertebra_name(name) is None or name.lower() == "sacrum"):
                lookup[label] = TISSUE[tissue_of(name)]
        tissues = lookup[masks.labels]
        whole_body = bool(np.isin(lookup, [TISSUE["lung"], TISSUE["organ"]]).any())
    tissues[np.isin(masks.labels, list(masks.names))] = TISSUE["posterior"]
    for body in bodies:
        region = tuple(slice(o, o + n) for o, n in zip(body.offset, body.mask.shape, strict=True))
        tissues[region][body.mask] = TISSUE["cancellous"]
    return TissueAtlas(tissues, bodies, masks.affine, masks_path, whole_body)


def fill_spine(slab: AnatomySlab, rng: np.random.Generator) -> AnatomySlab:
    """Discs between neighbouring bodies and the canal behind them, on a slab's unlabelled pixels."""
    fractions = slab.fractions.copy()
    free = fractions[TISSUE["air"]] > 0.5  # unlabelled so far
    disc = _discs(slab, free)
    _move(fractions, disc, "disc")
    canal = _canal(fractions, free & ~disc, slab.pixel_mm, rng)
    _move(fractions, canal, "canal")
    return slab.with_changes(fractions=fractions)


def _move(fractions: np.ndarray, where: np.ndarray, tissue: str) -> None:
    """Give the unlabelled share of ``where``'s pixels to ``tissue``."""
    air = TISSUE["air"]
    fractions[TISSUE[tissue]][where] += fractions[air][where]
    fractions[air][where] = 0.0


def _discs(slab: AnatomySlab, free: np.ndarray) -> np.ndarray:
    """Pixels between the facing endplates of vertically neighbouring bodies."""
    disc = np.zeros(slab.shape, dtype=bool)
    masks = sorted((b.fraction >= 0.5 for b in slab.bodies), key=lambda m: np.flatnonzero(m.any(axis=1))[0])
    for upper, lower in itertools.pairwise(masks):
        rows_u, rows_l = np.flatnonzero(upper.any(axis=1)), np.flatnonzero(lower.any(axis=1))
        top, bottom = max(0, int(rows_u[-1]) - 2), int(rows_l[0]) + 2
        if bottom <= top or (bottom - top) * slab.pixel_mm > 25:
            continue
        first, last = max(0, top - (bottom - top) - 3), bottom + (bottom - top) + 4
        band = (upper | lower)[first:last]
        both = ndimage.binary_closing(band, structure=np.ones((bottom - top + 3, 1)))
        disc[first:last] |= both & ~band
    return disc & free


def _canal(fractions: np.ndarray, free: np.ndarray, pixel_mm: float, rng: np.random.Generator) -> np.ndarray:
    """Row by row, the unlabelled gap between the back of the bodies and discs and the posterior elements."""
    front = (fractions[TISSUE["cancellous"]] + fractions[TISSUE["disc"]]) > 0.5
    back = fractions[TISSUE["posterior"]] > 0.3
    columns = np.arange(front.shape[1])
    body_edge = np.where(front.any(axis=1), np.where(front, columns, -1).max(axis=1), -1)
    after = back & (columns[None, :] > body_edge[:, None])
    arch = np.where(after.any(axis=1), np.where(after, columns, front.shape[1]).min(axis=1), -1)
    width = round(rng.uniform(12.0, 18.0) / pixel_mm)
    ends = np.where(arch > 0, arch, body_edge + width)
    inside = (columns[None, :] > body_edge[:, None]) & (columns[None, :] < ends[:, None]) & (body_edge[:, None] >= 0)
    return inside & ((ends - body_edge) * pixel_mm < 25)[:, None] & free

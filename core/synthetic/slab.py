"""The anatomy phantom's sagittal slab: what each pixel is made of, before it is given an appearance.

The second phantom source (beside the analytic one) starts from real segmentations (TotalSegmentator and VerSe label
maps). A case is cut from such a map as one sagittal slab and kept as **tissue fractions**: for each pixel, how much
of each tissue class of :data:`TISSUES` lies in it (the fractions sum to 1), so partial volume is exact and every
deformation moves all classes together. Each vertebral body is also kept as its own fraction map, from which its
truth box is read (the body rule of the segmented-CT import: pixels at least half body).

Three steps turn an :class:`AnatomySlab` into a training image: ``deform`` (elastic, scale, rotation, a change of
kyphosis or lordosis), ``diseases`` (compression, clefts, cement, endplate notches, sclerosis on a body), and
``appearance`` (HU per tissue drawn from wide ranges, texture, cortical shell, bias field, kernel, noise).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from core.annotations.model import Disease

#: Tissue classes of the anatomy phantom, in the order of :attr:`AnatomySlab.fractions`.
TISSUES: tuple[str, ...] = (
    "air",  # outside the body
    "fat",
    "soft",  # muscle and other soft tissue, skin
    "organ",  # liver, spleen, kidneys, pancreas, heart muscle …
    "blood",  # heart chambers, aorta, vessels
    "lung",
    "gas",  # bowel gas, trachea
    "bowel",  # bowel content
    "disc",  # intervertebral discs
    "canal",  # spinal canal: cord and CSF
    "cancellous",  # inside of the vertebral bodies
    "posterior",  # posterior elements of the vertebrae
    "bone",  # other bone: ribs, sternum, pelvis, sacrum, shoulder girdle
    "calcification",  # vessel wall calcification
    "metal",  # implants
    "cement",  # vertebroplasty cement
)
TISSUE = {name: index for index, name in enumerate(TISSUES)}


@dataclass(frozen=True)
class SlabBody:
    """One vertebral body on the slab: its vertebra's name (``T12``, ``L6`` …) and the fraction of each pixel that
    is this body; ``diseases`` made on it, and the Genant-like grade of a compression (0 when none)."""

    name: str
    fraction: np.ndarray  # (H, W) float32 in 0…1
    diseases: frozenset[Disease] = frozenset()
    grade: int = 0

    def box(self, threshold: float = 0.5) -> tuple[float, float, float, float] | None:
        """(x1, y1, x2, y2) in pixels around the pixels at least ``threshold`` body, or None when there are none."""
        inside = self.fraction >= threshold
        if not inside.any():
            return None
        rows, cols = np.flatnonzero(inside.any(axis=1)), np.flatnonzero(inside.any(axis=0))
        return float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)


@dataclass(frozen=True)
class AnatomySlab:
    """A sagittal slab as tissue fractions (K, H, W) with its bodies, at ``pixel_mm`` square pixels; superior is
    up and anterior is left, as every sagittal image here."""

    fractions: np.ndarray
    bodies: tuple[SlabBody, ...]
    pixel_mm: float
    thickness_mm: float = 3.0
    source: str = ""
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.fractions.ndim != 3 or self.fractions.shape[0] != len(TISSUES):
            raise ValueError(f"fractions must be ({len(TISSUES)}, H, W), not {self.fractions.shape}")

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.fractions.shape[1]), int(self.fractions.shape[2])

    def tissue(self, name: str) -> np.ndarray:
        return self.fractions[TISSUE[name]]

    def with_changes(self, **changes) -> AnatomySlab:
        return replace(self, **changes)

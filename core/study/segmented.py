"""Segmented CT as a study: a CT with its vertebra label map becomes sagittal slabs with one box per vertebral body,
its level from the label, and, with a table of Genant grades, a diagnosis.

Grades map to diseases by one rule: grade 0 is NORMAL; grade 1, 2 or 3 (a mild, moderate or severe fracture) is a
fracture, ``OVCF`` unless ``fracture_as`` says ``OF``; the grade itself is kept on the box (``genant``). A body
without a grade in the table is a plain ``vertebra`` box (not diagnosed). Everything is read and checked before the
study is touched, so a bad mask, grid or table writes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from core.annotations.geometry import HIT_IOM, iom_matrix
from core.annotations.model import Box, Disease, SliceAnnotation, Vertebra
from core.annotations.vertebral_bodies import VertebralBody, find_bodies, slab_boxes
from core.errors import ImageReadError, StudyError
from core.imaging.dicom_series import scan_dicom
from core.imaging.image import SliceImage, Volume
from core.imaging.nifti import is_nifti, read_nifti
from core.imaging.reformat import SagittalReformat
from core.imaging.vertebra_masks import VertebraMasks, read_vertebra_masks
from core.study.grades import read_grades

FRACTURE_CLASSES = ("OVCF", "OF")
#: The reader id a segmentation's boxes get by default, from its labelling scheme.
DEFAULT_READERS = {"verse": "verse", "totalsegmentator": "totalsegmentator"}


@dataclass(frozen=True)
class LabelOptions:
    """``import CT --labels MASKS`` and its companions."""

    labels: Path
    scheme: str | None = None
    subregions: Path | None = None
    consensus: bool = False
    grades: Path | None = None
    subject: str | None = None
    fracture_as: str = "OVCF"


@dataclass
class SegmentedCT:
    """A CT with its vertebral bodies, checked and ready to write."""

    source: Path
    ct: Volume
    masks: VertebraMasks
    bodies: list[VertebralBody]
    reader: str
    consensus: bool
    grades: dict[str, int] = field(default_factory=dict)
    subject: str | None = None
    fracture: Disease = Disease.OVCF
    notes: list[str] = field(default_factory=list)

    @property
    def identity(self) -> str:
        """What makes this import the same as an earlier one: the CT, the masks and the grades it used."""
        digest = hashlib.sha256()
        for path in (self.source, self.masks.source, *([self.masks.source] if self.masks.body is not None else [])):
            digest.update(str(path.resolve()).encode())
        digest.update(self.masks.labels.tobytes()[:: max(1, self.masks.labels.nbytes // 4_000_000)])
        digest.update(repr(sorted(self.grades.items())).encode())
        return "segmented:" + digest.hexdigest()


def read_ct(source: Path) -> Volume:
    """The CT volume of a NIfTI file or a DICOM series (the largest series under a folder)."""
    if is_nifti(source):
        volume = read_nifti(source)
        if volume.is_label_map:
            raise ImageReadError("this is a label map (a segmentation), not a CT: give the CT as the source and "
                                 "the mask with --labels", source)
        return volume
    scan = scan_dicom(source)
    if not scan.series:
        reasons = "; ".join(f"{p.name}: {why}" for p, why in scan.skipped[:3])
        raise ImageReadError(f"no CT here to go with the labels{' (' + reasons + ')' if reasons else ''}", source)
    series = max(scan.series, key=lambda s: len(s.frames))
    if len(series.frames) < 2:
        raise ImageReadError("a label map needs the CT volume it was made on, not a single slice", source)
    return series.load_volume()


def prepare_segmented(source: str | Path, options: LabelOptions, reader: str | None = None) -> SegmentedCT:
    """Read and check the CT, its masks and the grades (see the module). Raises a typed error naming the file."""
    source = Path(source)
    if not source.exists():
        raise ImageReadError("no such file or folder", source)
    if options.fracture_as not in FRACTURE_CLASSES:
        raise StudyError(f"--fracture-as must be {' or '.join(FRACTURE_CLASSES)}, not {options.fracture_as!r}")
    masks = read_vertebra_masks(options.labels, options.scheme, options.subregions)
    ct = read_ct(source)
    masks.check_grid(ct)
    bodies = find_bodies(masks)
    notes = list(masks.notes)
    notes += [f"{b.name}: no spinal canal found, so the whole vertebra was boxed" for b in bodies
              if b.method == "whole vertebra"]
    notes += [f"{b.name}: cut off by the edge of the scan, left out" for b in bodies if not b.boxed]
    notes += _overlaps(bodies)
    prepared = SegmentedCT(source, ct, masks, bodies, reader or DEFAULT_READERS.get(masks.scheme, "segmentation"),
                           options.consensus, fracture=Disease(options.fracture_as), notes=notes)
    if options.grades is not None:
        prepared.subject, prepared.grades = _grades(options, source, bodies)
    return prepared


def _overlaps(bodies: list[VertebralBody]) -> list[str]:
    """Bodies of different labels that occupy the same place along the spine (their side views hit): the
    segmentation probably labels parts of one body twice, so the boxes and levels there need a look."""
    sides = [Box(b.offset[1], b.offset[2], b.offset[1] + b.mask.shape[1], b.offset[2] + b.mask.shape[2])
             for b in bodies]
    overlap = iom_matrix(sides, sides)
    return [f"{bodies[i].name} and {bodies[j].name} overlap along the spine (the segmentation may give one body "
            "two labels): check their boxes" for i in range(len(bodies)) for j in range(i + 1, len(bodies))
            if overlap[i, j] > HIT_IOM]


def _grades(options: LabelOptions, source: Path, bodies: list[VertebralBody]) -> tuple[str, dict[str, int]]:
    table = read_grades(options.grades)  # type: ignore[arg-type]
    subject, grades = table.for_source(source, options.subject)
    present = {b.name for b in bodies}
    missing = sorted(set(grades) - present)
    if missing:
        raise StudyError(f"grades for {subject} name {', '.join(missing)}, which the mask does not have (it has "
                         f"{', '.join(b.name for b in bodies)})", options.grades)
    return subject, grades


def _vertebra(prepared: SegmentedCT, body: VertebralBody, box) -> Vertebra:
    grade = prepared.grades.get(body.name)
    notes = []
    if body.level is None:
        notes.append(f"{body.name} (a level beyond T1-L5 and S1, kept as its name)")
    if body.truncated:
        notes.append("cut off by the edge of the scan")
    return Vertebra(box, diseases=frozenset({prepared.fracture}) if grade else frozenset(), level=body.level,
                    source=prepared.reader, description="; ".join(notes), diagnosed=grade is not None, genant=grade)


def segmented_slices(prepared: SegmentedCT, indices: list[int] | None = None, *, count: int, step_mm: float,
                     thickness_mm: float) -> Iterator[tuple[SliceImage, SliceAnnotation, str]]:
    """Each default sagittal slab with its body boxes: (image, annotation, where it came from)."""
    reformat = SagittalReformat(prepared.ct)
    for index in indices if indices is not None else reformat.default_indices(count, step_mm):
        image = reformat.slice(index, thickness_mm)
        vertebrae = tuple(_vertebra(prepared, body, box)
                          for body, box in slab_boxes(reformat, prepared.bodies, index, thickness_mm))
        annotation = SliceAnnotation(image.width, image.height, vertebrae, reviewed=True,
                                     reader=None if prepared.consensus else prepared.reader)
        yield image, annotation, f"{prepared.source} ({image.label}) with {prepared.masks.source.name}"

"""What a DICOM file's header says: its identifiers, size, pixel spacing, and where each frame lies in the patient.

* :class:`DicomHeader`, the fields that discovery, sorting and grouping need, read without pixel data.
* :class:`FrameGeometry`, one frame's position and orientation, and the names derived from them
  (:func:`orientation_name`, :func:`sagittal_position_mm`).
* :func:`functional_group`, which finds a per-frame or shared item of an enhanced multi-frame object.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset

from core.imaging.dicom_file import file_errors
from core.imaging.dicom_limits import PIXEL_TAGS, check_pixel_claims


@dataclass(frozen=True)
class FrameGeometry:
    """Where one frame lies in the patient: DICOM (LPS) position of its first pixel and its row/column cosines."""

    position: tuple[float, float, float] | None
    orientation: tuple[float, ...] | None

    @property
    def normal(self) -> np.ndarray | None:
        if self.orientation is None:
            return None
        row, col = np.asarray(self.orientation[:3]), np.asarray(self.orientation[3:])
        return np.cross(row, col)


def sagittal_position_mm(geometry: FrameGeometry) -> float | None:
    """A sagittal frame's RAS x in mm (from its first pixel's position), else None."""
    normal = geometry.normal
    if geometry.position is None or normal is None or abs(float(normal[0])) < 0.9:
        return None
    return -float(geometry.position[0])  # DICOM's x grows towards the patient's left (LPS): RAS x is its negative


@dataclass(frozen=True)
class DicomHeader:
    """The header fields that discovery, sorting and grouping need (read without pixel data)."""

    path: Path
    sop_class_uid: str
    modality: str
    study_uid: str
    series_uid: str
    frame_of_reference_uid: str
    series_description: str
    series_number: int | None
    instance_number: int | None
    rows: int
    columns: int
    frames: tuple[FrameGeometry, ...]
    pixel_spacing: tuple[float, float] | None
    has_pixels: bool
    transfer_syntax: str

    @property
    def frame_count(self) -> int:
        return len(self.frames)


def orientation_name(orientation: tuple[float, ...] | None) -> str:
    """``sagittal``, ``coronal`` or ``axial`` from the image orientation cosines (``oblique`` if under 30° off)."""
    if orientation is None:
        return "unknown"
    normal = np.abs(np.cross(np.asarray(orientation[:3]), np.asarray(orientation[3:])))
    axis = int(np.argmax(normal))
    name = ("sagittal", "coronal", "axial")[axis]
    return name if normal[axis] >= math.cos(math.radians(30)) else f"oblique ({name})"


def read_header_from(ds: Dataset, path: Path) -> DicomHeader:
    with file_errors(path, "malformed image tags"):
        return _header_from_dataset(ds, path, has_pixels=any(tag in ds for tag in PIXEL_TAGS))


def _header_from_dataset(ds: Dataset, path: Path, *, has_pixels: bool) -> DicomHeader:
    check_pixel_claims(ds, path)  # before a geometry is built for every frame the header claims
    meta = getattr(ds, "file_meta", None)
    syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    frame_count = max(1, int(ds.get("NumberOfFrames") or 1))
    return DicomHeader(
        path=path,
        sop_class_uid=str(ds.get("SOPClassUID", "")),
        modality=str(ds.get("Modality", "")),
        study_uid=str(ds.get("StudyInstanceUID", "")),
        series_uid=str(ds.get("SeriesInstanceUID", "")),
        frame_of_reference_uid=str(ds.get("FrameOfReferenceUID", "")),
        series_description=str(ds.get("SeriesDescription", "")),
        series_number=int_or_none(ds.get("SeriesNumber")),
        instance_number=int_or_none(ds.get("InstanceNumber")),
        rows=int(ds.get("Rows") or 0),
        columns=int(ds.get("Columns") or 0),
        frames=tuple(_frame_geometry(ds, i) for i in range(frame_count)),
        pixel_spacing=pixel_spacing(ds),
        has_pixels=has_pixels,
        transfer_syntax=syntax,
    )


def int_or_none(value: Any) -> int | None:
    """An integer element's value, or None when it is empty or not a number."""
    try:
        return None if value in (None, "") else int(value)
    except (TypeError, ValueError):
        return None


def functional_group(ds: Dataset, frame: int, sequence: str) -> Dataset | None:
    """The item of ``sequence`` for ``frame`` in an enhanced multi-frame object (per-frame first, then shared)."""
    for groups_name, index in (("PerFrameFunctionalGroupsSequence", frame), ("SharedFunctionalGroupsSequence", 0)):
        groups = ds.get(groups_name)
        items = groups[index].get(sequence) if groups and index < len(groups) else None
        if items:
            return items[0]
    return None


def _floats(value: Any, count: int) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        numbers = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    if len(numbers) != count or not all(math.isfinite(v) for v in numbers):
        return None
    return numbers


def _frame_geometry(ds: Dataset, frame: int) -> FrameGeometry:
    position_item = functional_group(ds, frame, "PlanePositionSequence")
    orientation_item = functional_group(ds, frame, "PlaneOrientationSequence")
    position = _floats((position_item or ds).get("ImagePositionPatient"), 3)
    orientation = _floats((orientation_item or ds).get("ImageOrientationPatient"), 6)
    if orientation is not None and np.linalg.norm(np.cross(orientation[:3], orientation[3:])) < 0.5:
        orientation = None
    return FrameGeometry(position, orientation)  # type: ignore[arg-type]


def pixel_spacing(ds: Dataset, frame: int = 0) -> tuple[float, float] | None:
    """(row spacing, column spacing) in mm, from PixelSpacing, the functional groups, or ImagerPixelSpacing."""
    measures = functional_group(ds, frame, "PixelMeasuresSequence")
    for source in (measures, ds):
        if source is None:
            continue
        for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
            spacing = _floats(source.get(keyword), 2)
            if spacing and spacing[0] > 0 and spacing[1] > 0:
                return spacing  # type: ignore[return-value]
    return None

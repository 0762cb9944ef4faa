"""Writing one source examination into the study as a new case: the case id claimed under the study's write lock,
each slice's image (DICOM from a whitelist of tags, with UIDs derived from the fingerprint; PNG re-encoded) and
annotation written, then the import record added. A failure removes the case's files; an examination whose
fingerprint is recorded already raises :class:`AlreadyImported`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from core.annotations.model import SliceAnnotation
from core.imaging.dicom_write import SliceTags, derived_uid
from core.imaging.image import SliceImage
from core.imaging.reformat import SagittalPlane
from core.study.case_claim import CaseClaim, claim_case
from core.study.images import write_slice_images
from core.study.import_options import ImportedCase, ImportOptions
from core.study.import_sources import ImportUnit
from core.study.layout import DEFAULT_READER, Study, StudySettings, check_id
from core.study.lock import study_write_lock


class AlreadyImported(Exception):
    """The examination is in the study already (imported before, or by another import running at the same time)."""

    def __init__(self, case: str) -> None:
        super().__init__(case)
        self.case = case


@dataclass
class _WrittenSlices:
    """What writing a case's slices left to record: key file rows (one per slice), notes, annotations, readers."""

    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    annotations: int = 0
    readers: set[str] = field(default_factory=set)


def import_unit(
    study: Study,
    unit: ImportUnit,
    options: ImportOptions,
    fingerprint: str,
    key_rows: list[list[str]],
    report_notes: list[str],
) -> ImportedCase | None:
    """Import one examination as a new case. The case id is claimed under the study's write lock before anything is
    written, and the import record is added under it once every file is in place, so imports running at the same time
    (other commands, the app) never share a case or lose each other's records; the same examination imported twice
    at once is kept once. Until its record is written the case is not listed, and a killed import's files are removed
    by the next import (:mod:`core.study.case_claim`)."""
    claim = _claim_new_case(study, fingerprint, report_notes)
    case = claim.case
    try:
        written = _write_slices(study, case, unit, options, fingerprint)
        slices = len(written.rows)
        if slices == 0:
            claim.abandon()
            return None
        study.update_settings(
            lambda settings: _record_import(settings, case, fingerprint, unit.kind, slices, written.readers)
        )
    except BaseException:
        claim.abandon()  # a new case id: only this import's files are there
        raise
    claim.done()
    key_rows.extend(written.rows)
    report_notes.extend(written.notes)
    return ImportedCase(case, unit.label, slices, written.annotations)


def _claim_new_case(study: Study, fingerprint: str, report_notes: list[str]) -> CaseClaim:
    """Claim the next case id, under the study's write lock, unless the examination is recorded already."""
    with study_write_lock(study.root):
        study.reload_settings()
        existing = study.find_import(fingerprint)
        if existing is not None:
            raise AlreadyImported(existing)
        return claim_case(study, report_notes)


def _write_slices(study: Study, case: str, unit: ImportUnit, options: ImportOptions,
                  fingerprint: str) -> _WrittenSlices:
    """Write every slice of the examination as ``s001``, ``s002``, … of ``case``, with its annotation if it has one."""
    written = _WrittenSlices()
    for number, item in enumerate(unit.load(), start=1):
        slice_id = f"s{number:03d}"
        note = _write_image(study, case, slice_id, number, item.image, study.settings.png_window, fingerprint)
        if note:
            written.notes.append(note)
        if item.annotation is not None:
            _save_annotation(study, item.annotation, case, slice_id, options, written.readers)
            written.annotations += 1
        written.rows.append([case, slice_id, item.origin])
    return written


def _save_annotation(study: Study, annotation: SliceAnnotation, case: str, slice_id: str, options: ImportOptions,
                     readers: set[str]) -> None:
    """Save as the consensus when the labels are imported as the consensus; otherwise as the reader's (the option's,
    the file's, or the default reader), adding that reader to ``readers``."""
    if options.labels is not None and options.labels.consensus:
        study.save_annotation(annotation, case, slice_id)
        return
    reader = check_id(options.reader or annotation.reader or DEFAULT_READER, "reader")
    readers.add(reader)
    study.save_annotation(annotation, case, slice_id, reader=reader)


def _record_import(settings: StudySettings, case: str, fingerprint: str, kind: str, slices: int,
                   readers: set[str]) -> None:
    """Add the import record (under the study's write lock, on the settings as they are on disk now)."""
    existing = next((r.get("case") for r in settings.imports if r.get("fingerprint") == fingerprint), None)
    if existing is not None:  # another import of the same examination finished first
        raise AlreadyImported(existing)
    settings.readers.extend(sorted(readers - set(settings.readers)))
    settings.imports.append(
        {
            "case": case,
            "fingerprint": fingerprint,
            "kind": kind,
            "slices": slices,
            "imported": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
    )


def _write_image(
    study: Study, case: str, slice_id: str, number: int, image: SliceImage, window_spec: str, seed: str
) -> str | None:
    """Write the slice's image(s); returns a note when the pixel values had to change."""
    tags = _slice_tags(case, number, image, seed) if image.hu else None
    note = write_slice_images(study.root / "images" / case, slice_id, image, window_spec, tags)
    return f"{case}/{slice_id}: {note}" if note else None


def _slice_tags(case: str, number: int, image: SliceImage, seed: str) -> SliceTags:
    spacing = image.spacing_mm or (1.0, 1.0)
    position = orientation = None
    thickness = None
    if image.plane is not None:
        position, orientation = _plane_lps(image.plane)
        thickness = image.plane.thickness_mm
    return SliceTags(
        patient_id=case,
        study_uid=derived_uid(seed, "study"),
        series_uid=derived_uid(seed, "series"),
        sop_uid=derived_uid(seed, "slice", str(number)),
        frame_of_reference_uid=derived_uid(seed, "frame-of-reference"),
        instance_number=number,
        series_description="sagittal reformat" if image.plane is not None else "imported",
        spacing_mm=spacing,
        thickness_mm=thickness,
        position_lps=position,
        orientation_lps=orientation,
        window=image.windows[0] if image.windows else None,
        image_type=("DERIVED", "SECONDARY", "REFORMATTED") if image.plane is not None else ("DERIVED", "SECONDARY"),
    )


def _plane_lps(plane: SagittalPlane) -> tuple[list[float], list[float]]:
    """ImagePositionPatient (first pixel centre) and ImageOrientationPatient of a sagittal image, in LPS."""
    corners = plane.pixel_to_patient(np.array([0.5, 1.5, 0.5]), np.array([0.5, 0.5, 1.5]))
    flip = np.array([-1.0, -1.0, 1.0])
    origin, along_row, down_column = corners * flip
    row_cos = (along_row - origin) / np.linalg.norm(along_row - origin)
    col_cos = (down_column - origin) / np.linalg.norm(down_column - origin)
    return origin.tolist(), [*row_cos.tolist(), *col_cos.tolist()]

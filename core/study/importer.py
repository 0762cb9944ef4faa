"""Importing DICOM, NIfTI and PNG/JPEG (with LabelMe JSON beside the images) into a study, anonymised.

Each source examination becomes a case named ``case-NNNN``; its slices become ``s001``, ``s002``, … Nothing of the
source's names or patient tags reaches the study: DICOM is rewritten from a whitelist of tags, PNG and JPEG are
re-encoded as PNG (exact pixel values, no metadata). A fingerprint of each source (salted SHA-256) stops the same
examination being imported twice. ``key_file``, when given, receives the mapping back to the sources; it must lie
outside the study (checked on its resolved path, before anything is written), or the sources' names would be in it.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import hashlib
import io
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.annotations.labelme_io import check_labelme_size, read_labelme
from core.annotations.model import SliceAnnotation
from core.errors import AnnotationFileError, ImageReadError, StudyError, VertebraReviewError
from core.fileio import atomic_write_bytes
from core.imaging import limits
from core.imaging.dicom_series import DicomSeries, scan_dicom
from core.imaging.dicom_write import SliceTags, derived_uid
from core.imaging.image import SliceImage, Volume
from core.imaging.limits import size_text
from core.imaging.nifti import check_nifti_header, is_nifti, read_nifti
from core.imaging.raster import RASTER_SUFFIXES, decode_raster, read_raster
from core.imaging.reformat import (
    DEFAULT_SLICE_COUNT,
    DEFAULT_STEP_MM,
    DEFAULT_THICKNESS_MM,
    SagittalPlane,
    SagittalReformat,
)
from core.imaging.windowing import parse_window
from core.paths import is_inside
from core.progress import Progress, ProgressGenerator
from core.study.case_claim import claim_case
from core.study.images import write_slice_images
from core.study.layout import DEFAULT_READER, Study, StudySettings, check_id
from core.study.lock import study_write_lock
from core.study.segmented import LabelOptions, SegmentedCT, prepare_segmented, segmented_slices

_log = logging.getLogger(__name__)


@dataclass
class ImportOptions:
    reader: str | None = None
    window: str | None = None
    sagittal: bool = False
    count: int = DEFAULT_SLICE_COUNT
    step_mm: float = DEFAULT_STEP_MM
    thickness_mm: float = DEFAULT_THICKNESS_MM
    key_file: Path | None = None
    #: A vertebra segmentation of the source CT: its bodies become boxes (see core.study.segmented).
    labels: LabelOptions | None = None


@dataclass
class ImportedCase:
    case: str
    source: str
    slices: int
    annotations: int


@dataclass
class ImportReport:
    cases: list[ImportedCase] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    #: Files that are fine but not for import (segmentation label maps), with the reason.
    ignored: list[tuple[str, str]] = field(default_factory=list)
    #: Changes made on the way in (for example a 16-bit PNG stored as 8-bit).
    notes: list[str] = field(default_factory=list)

    @property
    def slice_count(self) -> int:
        return sum(c.slices for c in self.cases)


class _Duplicate(Exception):
    """The examination is in the study already (imported before, or by another import running at the same time)."""

    def __init__(self, case: str) -> None:
        super().__init__(case)
        self.case = case


class _NotForImport(Exception):
    """A readable file that is not an image to import (a segmentation label map)."""


@dataclass
class _Slice:
    image: SliceImage
    annotation: SliceAnnotation | None = None
    origin: str = ""


@dataclass
class _Unit:
    """One source examination, to become one case."""

    label: str
    identity: str
    kind: str
    load: Callable[[], Iterator[_Slice]]


def import_source(
    source: str | Path, study_root: str | Path, options: ImportOptions | None = None
) -> ProgressGenerator[ImportReport]:
    """Import everything under ``source`` into the study at ``study_root`` (created when missing)."""
    options = options or ImportOptions()
    source = Path(source)
    if not source.exists():
        raise ImageReadError("no such file or folder", source)
    if options.reader is not None:
        check_id(options.reader, "reader")
    if options.key_file is not None:
        _check_key_file(Path(options.key_file), Path(study_root))
    window_spec = options.window
    if window_spec is not None:
        try:
            parse_window(window_spec)
        except ValueError as exc:
            raise StudyError(str(exc)) from exc
    segmented = prepare_segmented(source, options.labels, options.reader) if options.labels else None
    study = Study.open_or_create(study_root)
    if window_spec is not None:
        study.update_settings(lambda settings: setattr(settings, "png_window", window_spec))
    report = ImportReport()
    units = _discover(source, options, report) if segmented is None else [_segmented_unit(segmented, options)]
    if segmented is not None:
        report.notes.extend(segmented.notes)
    key_rows: list[list[str]] = []
    for number, unit in enumerate(units, start=1):
        yield Progress("import", number - 1, len(units), f"importing {unit.label}")
        fingerprint = hashlib.sha256((study.settings.salt + unit.identity).encode()).hexdigest()
        try:
            imported = _import_unit(study, unit, options, fingerprint, key_rows, report.notes)
        except _Duplicate as exc:
            report.duplicates.append((unit.label, exc.case))
            continue
        except _NotForImport as exc:
            report.ignored.append((unit.label, str(exc)))
            continue
        except VertebraReviewError as exc:
            report.skipped.append((exc.path or unit.label, exc.message))
            continue
        except Exception as exc:  # noqa: BLE001 - the last guard: one examination never stops the others
            _log.debug("importing %s failed", unit.label, exc_info=True)
            report.skipped.append((unit.label, f"cannot be imported ({type(exc).__name__}: {exc})"))
            continue
        if imported is not None:
            report.cases.append(imported)
    if options.key_file is not None and key_rows:
        _write_key_file(options.key_file, key_rows)
    yield Progress("import", len(units), len(units), f"imported {report.slice_count} slices")
    return report


def _check_key_file(path: Path, study_root: Path) -> None:
    """The key file names the sources of the cases: it is kept outside the study, so that sharing the study does not
    share them (a link or ``..`` into the study counts as inside)."""
    if is_inside(study_root, path):
        raise StudyError(f"the key file maps cases back to their sources and must be kept outside the study "
                         f"{study_root}: give a path outside it", path)
    if path.exists() and not path.is_file():
        raise StudyError("the key file is not a regular file", path)


def _write_key_file(path: Path, rows: list[list[str]]) -> None:
    existing = path.read_text(encoding="utf-8") if path.is_file() else ""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if not existing:
        writer.writerow(["case", "slice", "source"])
    writer.writerows(rows)
    atomic_write_bytes(path, (existing + buffer.getvalue()).encode("utf-8"))


# -- discovery --------------------------------------------------------------------------------------------------------
def _discover(source: Path, options: ImportOptions, report: ImportReport) -> list[_Unit]:
    files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
    units: list[_Unit] = []
    rasters: dict[Path, list[Path]] = {}
    lone_json: list[Path] = []
    dicom_candidates = False
    for file in files:
        suffix = file.suffix.lower()
        if file.name.startswith("."):
            continue
        if suffix in RASTER_SUFFIXES or is_nifti(file) or suffix == ".json":
            try:
                _check_size(file)  # before the file is read whole for its fingerprint
            except VertebraReviewError as exc:
                report.skipped.append((str(file), exc.message))
                continue
        if suffix in RASTER_SUFFIXES:
            rasters.setdefault(file.parent, []).append(file)
        elif is_nifti(file):
            units.append(
                _Unit(str(file), f"nifti:{_file_digest(file)}", "nifti", lambda f=file: _nifti_slices(f, options))
            )
        elif suffix == ".json":
            stem = file.parent / file.stem
            beside = [stem, *(stem.with_name(stem.name + s) for s in (*RASTER_SUFFIXES, ".dcm"))]
            if not any(p.is_file() for p in beside):
                lone_json.append(file)
        else:
            dicom_candidates = True
    for folder, images in sorted(rasters.items()):
        images.sort()
        identity = "raster:" + "".join(_file_digest(p) for p in images)
        units.append(_Unit(str(folder), identity, "png", lambda i=images: _raster_slices(i, report)))
    for file in lone_json:
        units.append(
            _Unit(str(file), f"labelme:{_file_digest(file)}", "labelme", lambda f=file: _embedded_slices(f, report))
        )
    if dicom_candidates:
        units.extend(_dicom_units(source, options, report))
    return units


def _segmented_unit(prepared: SegmentedCT, options: ImportOptions) -> _Unit:
    def slices() -> Iterator[_Slice]:
        for image, annotation, origin in segmented_slices(prepared, count=options.count, step_mm=options.step_mm,
                                                          thickness_mm=options.thickness_mm):
            yield _Slice(image, annotation, origin)

    return _Unit(str(prepared.source), prepared.identity, "segmented", slices)


def _check_size(path: Path) -> None:
    """Refuse a file over its reader's limits from its header and size, before anything reads all of it: a NIfTI
    by what its header claims, a LabelMe file over its limit, any file over the limit of one file."""
    if is_nifti(path):
        check_nifti_header(path)
    elif path.suffix.lower() == ".json":
        check_labelme_size(path)
    size = path.stat().st_size
    if size > limits.MAX_FILE_BYTES:
        raise ImageReadError(f"the file is {size_text(size)}; the limit is {size_text(limits.MAX_FILE_BYTES)} per "
                             "file", path)


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _dicom_units(source: Path, options: ImportOptions, report: ImportReport) -> list[_Unit]:
    try:
        scan = scan_dicom(source)
    except VertebraReviewError as exc:
        report.skipped.append((str(source), exc.message))
        return []
    for path, why in scan.skipped:  # files that are plainly not DICOM are in scan.passed_over, unreported
        report.skipped.append((str(path), why))
    by_study: dict[str, list[DicomSeries]] = {}
    for series in scan.series:
        key = series.first.study_uid or series.first.frame_of_reference_uid or str(series.first.path.parent)
        by_study.setdefault(key, []).append(series)
    units = []
    for key, series_list in by_study.items():
        uids = sorted(s.uid for s in series_list)
        identity = "dicom:" + key + ":" + ",".join(uids) + ":" + ",".join(str(s.first.path.name) for s in series_list)
        label = str(series_list[0].first.path.parent)
        units.append(_Unit(label, identity, "dicom", lambda s=series_list: _dicom_slices(s, options, report)))
    return units


# -- slices of each kind ----------------------------------------------------------------------------------------------
def _raster_slices(images: list[Path], report: ImportReport) -> Iterator[_Slice]:
    for path in images:
        try:
            image = read_raster(path)
        except ImageReadError as exc:
            report.skipped.append((str(path), exc.message))
            continue
        yield _Slice(image, _beside_json(path, image, report), str(path))


def _embedded_slices(json_path: Path, report: ImportReport) -> Iterator[_Slice]:
    annotation = read_labelme(json_path)
    if annotation.image_data is None:
        report.skipped.append((str(json_path), "LabelMe JSON without its image (no image beside it, imageData null)"))
        return
    image = decode_raster(base64.b64decode(annotation.image_data), json_path, json_path.name)
    yield _Slice(image, annotation, str(json_path))


def _json_beside(image_path: Path) -> Path | None:
    """``x.json`` beside ``x.png`` or ``x.dcm``; ``name.json`` beside extension-less DICOM files."""
    candidates = [image_path.parent / f"{image_path.name}.json"]
    if image_path.suffix.lower() in (*RASTER_SUFFIXES, ".dcm"):
        candidates.insert(0, image_path.with_suffix(".json"))
    return next((c for c in candidates if c.is_file()), None)


def _beside_json(image_path: Path, image: SliceImage, report: ImportReport) -> SliceAnnotation | None:
    json_path = _json_beside(image_path)
    if json_path is None:
        return None
    try:
        return read_labelme(json_path, image_size=(image.width, image.height))
    except AnnotationFileError as exc:
        report.skipped.append((str(json_path), f"{exc.message} (the image was imported without it)"))
        return None


def _dicom_slices(series_list: list[DicomSeries], options: ImportOptions, report: ImportReport) -> Iterator[_Slice]:
    for series in series_list:
        stacked = len(series.frames) > 1
        if series.orientation == "sagittal" or not stacked:
            for image in series.load_slices():
                annotation = _beside_json(image.source, image, report) if image.source else None
                yield _Slice(image, annotation, str(image.source))
        elif options.sagittal:
            yield from _volume_slices(series.load_volume(), options, str(series.first.path.parent))
        else:
            report.skipped.append(
                (
                    str(series.first.path.parent),
                    f"{series.orientation} series of {len(series.frames)} slices: add --sagittal to reformat it",
                )
            )


def _nifti_slices(path: Path, options: ImportOptions) -> Iterator[_Slice]:
    volume = read_nifti(path)
    if volume.is_label_map:
        raise _NotForImport("a label map (segmentation), not a CT volume")
    yield from _volume_slices(volume, options, str(path))


def _volume_slices(volume: Volume, options: ImportOptions, origin: str) -> Iterator[_Slice]:
    reformat = SagittalReformat(volume)
    for index in reformat.default_indices(options.count, options.step_mm):
        image = reformat.slice(index, options.thickness_mm)
        yield _Slice(image, None, f"{origin} ({image.label})")


# -- writing ----------------------------------------------------------------------------------------------------------
def _import_unit(
    study: Study,
    unit: _Unit,
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
    with study_write_lock(study.root):
        study.reload_settings()
        existing = study.find_import(fingerprint)
        if existing is not None:
            raise _Duplicate(existing)
        claim = claim_case(study, report_notes)
    case = claim.case
    written = annotations = 0
    readers: set[str] = set()
    rows: list[list[str]] = []
    notes: list[str] = []
    try:
        for number, item in enumerate(unit.load(), start=1):
            slice_id = f"s{number:03d}"
            note = _write_image(study, case, slice_id, number, item.image, study.settings.png_window, fingerprint)
            if note:
                notes.append(note)
            if item.annotation is not None and options.labels is not None and options.labels.consensus:
                study.save_annotation(item.annotation, case, slice_id)
                annotations += 1
            elif item.annotation is not None:
                reader = check_id(options.reader or item.annotation.reader or DEFAULT_READER, "reader")
                readers.add(reader)
                study.save_annotation(item.annotation, case, slice_id, reader=reader)
                annotations += 1
            rows.append([case, slice_id, item.origin])
            written += 1
        if written == 0:
            claim.abandon()
            return None
        study.update_settings(lambda settings: _record_import(settings, case, fingerprint, unit.kind, written, readers))
    except BaseException:
        claim.abandon()  # a new case id: only this import's files are there
        raise
    claim.done()
    key_rows.extend(rows)
    report_notes.extend(notes)
    return ImportedCase(case, unit.label, written, annotations)


def _record_import(settings: StudySettings, case: str, fingerprint: str, kind: str, slices: int,
                   readers: set[str]) -> None:
    """Add the import record (under the study's write lock, on the settings as they are on disk now)."""
    existing = next((r.get("case") for r in settings.imports if r.get("fingerprint") == fingerprint), None)
    if existing is not None:  # another import of the same examination finished first
        raise _Duplicate(existing)
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

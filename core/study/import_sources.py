"""Finding the examinations under an import's source: each becomes an :class:`ImportUnit` (one future case) with the
identity its fingerprint is made from and a loader of its slices (:mod:`core.study.import_slices`). PNG/JPEG files
group by folder, DICOM files by study, a NIfTI file or a LabelMe JSON with its image inside is one examination; a
segmented CT (:mod:`core.study.segmented`) is one. A file over its reader's limits is skipped before it is read whole.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from core.annotations.labelme_io import check_labelme_size
from core.errors import ImageReadError, VertebraReviewError
from core.imaging import limits
from core.imaging.dicom_series import DicomSeries, scan_dicom
from core.imaging.limits import size_text
from core.imaging.nifti import check_nifti_header, is_nifti
from core.imaging.raster import RASTER_SUFFIXES
from core.study.import_options import ImportOptions, ImportReport
from core.study.import_slices import SourceSlice, dicom_slices, embedded_slices, nifti_slices, raster_slices
from core.study.segmented import SegmentedCT, segmented_slices


@dataclass
class ImportUnit:
    """One source examination, to become one case."""

    label: str
    identity: str
    kind: str
    load: Callable[[], Iterator[SourceSlice]]


def discover_units(source: Path, options: ImportOptions, report: ImportReport) -> list[ImportUnit]:
    files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
    units: list[ImportUnit] = []
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
                ImportUnit(str(file), f"nifti:{_file_digest(file)}", "nifti", lambda f=file: nifti_slices(f, options))
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
        units.append(ImportUnit(str(folder), identity, "png", lambda i=images: raster_slices(i, report)))
    for file in lone_json:
        units.append(ImportUnit(str(file), f"labelme:{_file_digest(file)}", "labelme",
                                lambda f=file: embedded_slices(f, report)))
    if dicom_candidates:
        units.extend(_dicom_units(source, options, report))
    return units


def segmented_unit(prepared: SegmentedCT, options: ImportOptions) -> ImportUnit:
    def slices() -> Iterator[SourceSlice]:
        for image, annotation, origin in segmented_slices(prepared, count=options.count, step_mm=options.step_mm,
                                                          thickness_mm=options.thickness_mm):
            yield SourceSlice(image, annotation, origin)

    return ImportUnit(str(prepared.source), prepared.identity, "segmented", slices)


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


def _dicom_units(source: Path, options: ImportOptions, report: ImportReport) -> list[ImportUnit]:
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
        units.append(ImportUnit(label, identity, "dicom", lambda s=series_list: dicom_slices(s, options, report)))
    return units

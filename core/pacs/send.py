"""``pacs send``: each case's results as a DICOM SR, stored on the server beside the original images.

Whose results: a reader's, the consensus, or a model's (:class:`~core.review.export.ExportSource`). Every report
references the original UIDs from the DICOM key; without the key nothing is sent, and a case missing from it is
listed and left out.

Sending twice: a report's SOP instance UID is derived from the case, the source and the content, so the same
results give the same instance, which is found on the server first and not sent again ("unchanged"). Changed
results give a new instance in the same report series, beside the earlier one (the report says how many earlier
ones are there); nothing is ever stored twice under two UIDs for the same content.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

from core.errors import VertebraReviewError
from core.fileio import atomic_write_bytes
from core.pacs.connection import PacsClient, connect
from core.pacs.errors import KeyFileError
from core.pacs.references import CaseReference, DicomKey, check_outside, dicom_key_path
from core.pacs.report import ReportedSlice, SliceGeometry, build_report
from core.pacs.servers import PacsServer
from core.progress import Progress, ProgressGenerator
from core.review.export import ExportSource
from core.study.layout import Study


@dataclass
class SentReport:
    case: str
    sop_uid: str
    series_uid: str
    vertebrae: int
    earlier: int = 0
    unchanged: bool = False
    file: Path | None = None


@dataclass
class SendReport:
    sent: list[SentReport] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def case_slices(study: Study, case: str, source: ExportSource, reference: CaseReference) -> list[ReportedSlice]:
    """The case's slices that ``source`` annotated, each with its original reference (and plane, for a reformat)."""
    found = []
    for slice_id in study.slices(case):
        annotation = study.load_annotation(case, slice_id, **source.where)
        if annotation is None:
            continue
        origin = reference.slices.get(slice_id)
        if origin is None:
            raise KeyFileError(f"{case}/{slice_id} is not in the DICOM key")
        series = reference.series[origin.series_uid]
        geometry = None
        if origin.sop_uid is None:
            image = study.image_path(case, slice_id)
            if image.suffix.lower() != ".dcm":
                raise KeyFileError(f"{case}/{slice_id}: a reformatted slice without its DICOM copy in the study, so "
                                   f"its plane is unknown", image)
            geometry = SliceGeometry.from_dataset(pydicom.dcmread(image, stop_before_pixels=True))
        found.append(ReportedSlice(slice_id, annotation, series, origin.sop_uid, geometry))
    return found


def _write(folder: Path, document: Dataset) -> Path:
    buffer = io.BytesIO()
    document.save_as(buffer, enforce_file_format=True)
    return atomic_write_bytes(folder / f"{document.SOPInstanceUID}.dcm", buffer.getvalue())


def build_reports(study_root: Path, source: ExportSource, key_file: Path,
                  cases: list[str] | None = None) -> tuple[list[tuple[str, Dataset, int]], list[tuple[str, str]]]:
    """Every case's report: ((case, document, vertebrae) …, (case, why not) …). Raises :class:`KeyFileError` when
    the DICOM key is missing."""
    study = Study.open(study_root)
    key_file = Path(key_file).absolute()
    check_outside(key_file, study.root)
    key = DicomKey.load(dicom_key_path(key_file))
    built, skipped = [], []
    for case in cases or study.cases():
        if case not in key.cases:
            skipped.append((case, f"not in the DICOM key {key.path}: it was not retrieved with `pacs get` (its "
                                  f"original UIDs are unknown)"))
            continue
        try:
            slices = case_slices(study, case, source, key.case(case))
            if not slices:
                skipped.append((case, f"no annotations of {source.describe()}"))
                continue
            document = build_report(key.case(case), slices, source)
        except VertebraReviewError as exc:
            skipped.append((case, str(exc)))
            continue
        built.append((case, document, sum(len(s.annotation.vertebrae) for s in slices)))
    return built, skipped


def send_results(server: PacsServer, study_root: Path, source: ExportSource, key_file: Path, *,
                 cases: list[str] | None = None, save_to: Path | None = None) -> ProgressGenerator[SendReport]:
    """Build and store every case's report (also written to ``save_to`` when given)."""
    report = SendReport()
    built, report.skipped = build_reports(study_root, source, key_file, cases)
    if not built:
        return report
    client: PacsClient = connect(server)
    try:
        for number, (case, document, vertebrae) in enumerate(built):
            yield Progress("send", number, len(built), case)
            study_uid, series_uid = str(document.StudyInstanceUID), str(document.SeriesInstanceUID)
            there = client.instance_uids(study_uid, series_uid)
            entry = SentReport(case, str(document.SOPInstanceUID), series_uid, vertebrae)
            entry.unchanged = entry.sop_uid in there
            entry.earlier = len([uid for uid in there if uid != entry.sop_uid])
            if save_to is not None:
                entry.file = _write(save_to, document)
            if not entry.unchanged:
                client.store([document])
            report.sent.append(entry)
        yield Progress("send", len(built), len(built), "sent")
    finally:
        client.close()
    return report

"""``pacs get``: one study (or some of its series) from a server into a study, through the anonymising import.

The instances are downloaded first into a download folder outside the study (one file per instance, named by its
SOP instance UID, each written atomically), so that an interrupted transfer resumes where it stopped: a re-run
fetches only what is missing. Only when every instance is there does the import run, and the import writes a case
completely or not at all, so the study never holds half a case. After it, the DICOM key (the original UIDs and
patient tags, see :mod:`core.pacs.references`) is written beside the key file, and the download folder is removed.

Series whose modality is not CT are left out (and listed); a study with no CT series is an error.
"""

from __future__ import annotations

import hashlib
import io
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.dataset import Dataset

from core.fileio import atomic_write_bytes
from core.pacs.connection import PacsClient, connect
from core.pacs.errors import PacsError
from core.pacs.query import SeriesMatch
from core.pacs.references import DicomKey, check_outside, dicom_key_path, references_from_import
from core.pacs.servers import PacsServer
from core.progress import Progress, ProgressGenerator
from core.review.preferences import app_dirs
from core.study.importer import ImportOptions, ImportReport, import_source

RETRIEVED_MODALITIES = ("CT",)


@dataclass
class RetrieveReport:
    """What was fetched (``downloaded`` now, ``resumed`` already there from an earlier run), what was left out, and
    the import's own report."""

    study_uid: str
    series: list[SeriesMatch] = field(default_factory=list)
    left_out: list[tuple[str, str]] = field(default_factory=list)
    downloaded: int = 0
    resumed: int = 0
    imported: ImportReport | None = None
    dicom_key: Path | None = None


def download_folder(server: PacsServer, study_uid: str, base: Path | None = None) -> Path:
    """Where a study's instances wait for the import: the same folder on every run, so that a re-run resumes."""
    digest = hashlib.sha256(f"{server.address}|{study_uid}".encode()).hexdigest()[:20]
    return (base or app_dirs().state / "pacs-downloads") / digest


def _save_instance(folder: Path, dataset: Dataset) -> None:
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    atomic_write_bytes(folder / f"{dataset.SOPInstanceUID}.dcm", buffer.getvalue())


def _choose_series(client: PacsClient, study_uid: str, wanted: list[str] | None,
                   report: RetrieveReport) -> list[SeriesMatch]:
    available = client.find_series(study_uid)
    if not available:
        raise PacsError(f"server {client.server.name} has no study {study_uid} (or it has no series)")
    by_uid = {s.series_uid: s for s in available}
    unknown = [uid for uid in wanted or [] if uid not in by_uid]
    if unknown:
        raise PacsError(f"study {study_uid} on server {client.server.name} has no series {unknown[0]}")
    chosen = []
    for series in [by_uid[uid] for uid in wanted] if wanted else available:
        if series.modality.upper() not in RETRIEVED_MODALITIES:
            report.left_out.append((series.series_uid, f"modality {series.modality or 'unknown'}, not CT"))
        else:
            chosen.append(series)
    if not chosen:
        modalities = ", ".join(sorted({s.modality or "unknown" for s in available}))
        raise PacsError(f"study {study_uid} has no CT series to retrieve (its modalities: {modalities})")
    return chosen


def retrieve_study(server: PacsServer, study_uid: str, study_root: Path, key_file: Path, *,
                   series: list[str] | None = None, options: ImportOptions | None = None,
                   downloads: Path | None = None, keep_download: bool = False) -> ProgressGenerator[RetrieveReport]:
    """Download ``study_uid`` (its CT series, or ``series``) and import it into the study at ``study_root``, with
    the import's key file at ``key_file`` and the DICOM key beside it."""
    key_file, study_root = Path(key_file).absolute(), Path(study_root).absolute()
    check_outside(key_file, study_root)
    options = options or ImportOptions()
    options.key_file = key_file
    report = RetrieveReport(study_uid)
    client = connect(server)
    try:
        yield Progress("query", 0, 1, f"asking {server.name} for the series of {study_uid}")
        report.series = _choose_series(client, study_uid, series, report)
        folder = download_folder(server, study_uid, downloads)
        yield from _download(client, study_uid, report, folder)
    finally:
        client.close()
    imported = yield from import_source(folder, study_root, options)
    report.imported = imported
    new_cases = [case.case for case in imported.cases]
    if new_cases:
        key = DicomKey.load(dicom_key_path(key_file), missing_ok=True)
        key.cases.update(references_from_import(key_file, new_cases))
        report.dicom_key = key.save()
    if (imported.cases or imported.duplicates) and not imported.skipped and not keep_download:
        shutil.rmtree(folder, ignore_errors=True)
    return report


def _download(client: PacsClient, study_uid: str, report: RetrieveReport, folder: Path) -> ProgressGenerator[None]:
    plan: list[tuple[SeriesMatch, Path, list[str]]] = []
    for chosen in report.series:
        uids = client.instance_uids(study_uid, chosen.series_uid)
        if chosen.instances is not None and len(uids) != chosen.instances:
            raise PacsError(f"series {chosen.series_uid}: the server lists {len(uids)} instances but announced "
                            f"{chosen.instances}; try again once the series is complete on the server")
        target = folder / chosen.series_uid
        target.mkdir(parents=True, exist_ok=True)
        missing = [uid for uid in uids if not (target / f"{uid}.dcm").is_file()]
        report.resumed += len(uids) - len(missing)
        plan.append((chosen, target, missing))
    total = sum(len(missing) for _, _, missing in plan)
    done = 0
    yield Progress("retrieve", 0, total, f"{report.resumed} instances already here" if report.resumed else "")
    for chosen, target, missing in plan:
        for sop in client.fetch(study_uid, chosen.series_uid, missing,
                                lambda dataset, t=target: _save_instance(t, dataset)):
            done += 1
            report.downloaded += 1
            yield Progress("retrieve", done, total, sop[-24:])

"""The DICOM key: for each case of a study, the original study's patient and study tags, its series and SOP
instance UIDs, and which original instance (or, for a sagittal reformat, which original series) each slice came from.

The study holds only anonymised copies with new UIDs; a report sent back to the PACS must name the originals, so
that it lands beside them. The DICOM key is written next to the import's key file (``KEY.csv`` →
``KEY.dicom.json``), outside the study, and is as sensitive as the key file: it holds the patient's identifiers.
It is built from the import's key file rows while the imported sources are still on disk (``pacs get`` does this
right after its import; :func:`references_from_import` does it for any DICOM import whose sources are still there).
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydicom
from pydicom.errors import InvalidDicomError

from core.fileio import atomic_write_json
from core.pacs.errors import KeyFileError
from core.paths import is_inside

DICOM_KEY_FORMAT = "vertebra-review-dicom-key"
DICOM_KEY_VERSION = 1
#: The study-level tags a report copies from the original images (patient and study modules).
STUDY_TAGS = ("PatientID", "PatientName", "PatientBirthDate", "PatientSex", "IssuerOfPatientID", "StudyInstanceUID",
              "StudyDate", "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName", "StudyDescription")
_REFORMAT_SOURCE = re.compile(r"^(?P<folder>.*) \((?P<label>[^()]*)\)$")


def dicom_key_path(key_file: Path) -> Path:
    """``KEY.dicom.json`` beside the import's key file ``KEY.csv``."""
    return key_file.with_name(key_file.stem + ".dicom.json")



def default_key_file(study: Path) -> Path:
    """``<study>.key.csv`` beside the study folder (outside it, as the key must be): where ``pacs get`` and the app's
    Open from PACS put the key file, and where ``pacs send`` and Send results to PACS look for it."""
    study = Path(study).absolute()
    return study.parent / f"{study.name}.key.csv"

@dataclass(frozen=True)
class SeriesReference:
    series_uid: str
    sop_class_uid: str
    frame_of_reference_uid: str
    modality: str
    instances: tuple[str, ...]


@dataclass(frozen=True)
class SliceReference:
    """Where one study slice came from: one original instance (``sop_uid``), or a reformat of a whole series."""

    series_uid: str
    sop_uid: str | None = None


@dataclass
class CaseReference:
    case: str
    study: dict[str, str]
    series: dict[str, SeriesReference] = field(default_factory=dict)
    slices: dict[str, SliceReference] = field(default_factory=dict)

    @property
    def study_uid(self) -> str:
        return self.study["StudyInstanceUID"]

    def to_json(self) -> dict[str, Any]:
        return {"study": self.study,
                "series": {uid: {"sop_class_uid": s.sop_class_uid, "frame_of_reference_uid": s.frame_of_reference_uid,
                                 "modality": s.modality, "instances": list(s.instances)}
                           for uid, s in self.series.items()},
                "slices": {name: {"series_uid": s.series_uid, "sop_uid": s.sop_uid} for name, s in self.slices.items()}}

    @classmethod
    def from_json(cls, case: str, data: dict[str, Any]) -> CaseReference:
        series = {uid: SeriesReference(uid, s["sop_class_uid"], s["frame_of_reference_uid"], s.get("modality", ""),
                                       tuple(s["instances"])) for uid, s in data["series"].items()}
        slices = {name: SliceReference(s["series_uid"], s.get("sop_uid")) for name, s in data["slices"].items()}
        return cls(case, dict(data["study"]), series, slices)


class DicomKey:
    """The cases' original references, by case id."""

    def __init__(self, path: Path, cases: dict[str, CaseReference] | None = None) -> None:
        self.path = path
        self.cases = dict(cases or {})

    @classmethod
    def load(cls, path: Path, *, missing_ok: bool = False) -> DicomKey:
        if not path.is_file():
            if missing_ok:
                return cls(path)
            raise KeyFileError("no DICOM key here: the original UIDs are written by `vertebra-review pacs get` (or "
                               "`pacs key` after an `import --key-file` whose sources are still on disk); without "
                               "them a report cannot be placed beside the original images", path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != DICOM_KEY_FORMAT:
                raise KeyFileError(f'not a DICOM key (no "format": "{DICOM_KEY_FORMAT}")', path)
            cases = {case: CaseReference.from_json(case, entry) for case, entry in data["cases"].items()}
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            raise KeyFileError(f"the DICOM key cannot be read ({type(exc).__name__}: {exc})", path) from exc
        return cls(path, cases)

    def save(self) -> Path:
        return atomic_write_json(self.path, {"format": DICOM_KEY_FORMAT, "version": DICOM_KEY_VERSION,
                                             "cases": {c: ref.to_json() for c, ref in sorted(self.cases.items())}})

    def case(self, case: str) -> CaseReference:
        found = self.cases.get(case)
        if found is None:
            raise KeyFileError(f"{case} is not in the DICOM key (it was not retrieved or imported with this key)",
                               self.path)
        return found


def check_outside(key_file: Path, study_root: Path) -> None:
    """The key files name the patient: they are kept outside the study (checked on resolved paths)."""
    for path in (key_file, dicom_key_path(key_file)):
        if is_inside(study_root, path):
            raise KeyFileError(f"the key file maps cases back to the patient's images and must be kept outside the "
                               f"study {study_root}: give a path outside it", path)


def _header(path: Path) -> pydicom.Dataset:
    try:
        return pydicom.dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, OSError, ValueError) as exc:
        raise KeyFileError(f"the source of an imported slice cannot be read for its UIDs ({exc})", path) from exc


def _series_reference(headers: list[pydicom.Dataset]) -> SeriesReference:
    first = headers[0]
    instances = tuple(str(h.SOPInstanceUID) for h in sorted(headers, key=lambda h: int(h.get("InstanceNumber") or 0)))
    return SeriesReference(str(first.SeriesInstanceUID), str(first.SOPClassUID),
                           str(first.get("FrameOfReferenceUID", "")), str(first.get("Modality", "")), instances)


def _study_tags(header: pydicom.Dataset) -> dict[str, str]:
    return {tag: str(header.get(tag, "") or "") for tag in STUDY_TAGS}


def _key_rows(key_file: Path, cases: set[str]) -> list[dict[str, str]]:
    try:
        with key_file.open(encoding="utf-8", newline="") as handle:
            return [row for row in csv.DictReader(handle) if row.get("case") in cases]
    except OSError as exc:
        raise KeyFileError(f"the key file cannot be read ({exc.strerror or exc})", key_file) from exc


def references_from_import(key_file: Path, cases: list[str]) -> dict[str, CaseReference]:
    """The original references of ``cases``, from the import's key file rows and their sources (still on disk):
    a source file gives its instance; a reformatted slice (``FOLDER (sagittal x=… mm)``) gives the series in
    ``FOLDER``. Raises :class:`KeyFileError` when a source is gone or is not DICOM."""
    found: dict[str, CaseReference] = {}
    folders: dict[Path, list[pydicom.Dataset]] = {}
    for row in _key_rows(key_file, set(cases)):
        case, slice_id, source = row["case"], row["slice"], row["source"]
        path = Path(source)
        if path.is_file():
            header = _header(path)
            series = _series_reference([header])
            reference = SliceReference(series.series_uid, str(header.SOPInstanceUID))
        else:
            match = _REFORMAT_SOURCE.match(source)
            folder = Path(match["folder"]) if match else path
            if not folder.is_dir():
                raise KeyFileError(f"{case}/{slice_id}: its source {source!r} is no longer on disk, so its original "
                                   f"UIDs cannot be read", key_file)
            if folder not in folders:
                folders[folder] = [_header(p) for p in sorted(folder.iterdir()) if p.is_file()
                                   and not p.name.startswith(".") and p.suffix.lower() in ("", ".dcm")]
            header = folders[folder][0]
            series = _series_reference(folders[folder])
            reference = SliceReference(series.series_uid, None)
        entry = found.setdefault(case, CaseReference(case, _study_tags(header)))
        known = entry.series.get(series.series_uid)
        if known is not None and known.instances != series.instances:
            series = SeriesReference(known.series_uid, known.sop_class_uid, known.frame_of_reference_uid,
                                     known.modality, tuple(dict.fromkeys(known.instances + series.instances)))
        entry.series[series.series_uid] = series
        entry.slices[slice_id] = reference
    return found

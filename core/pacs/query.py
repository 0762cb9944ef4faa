"""What a search asks a server for (:class:`StudyQuery`) and what it finds (:class:`StudyMatch`, :class:`SeriesMatch`),
the same for QIDO-RS and C-FIND. Values are taken from DICOM JSON (QIDO-RS) or datasets (C-FIND) by keyword."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.pacs.errors import PacsError

_DATE = re.compile(r"\d{8}")


def _parse_date(text: str, what: str) -> str:
    """A date as YYYYMMDD (also accepted: YYYY-MM-DD)."""
    compact = text.replace("-", "") if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text) else text
    if not _DATE.fullmatch(compact):
        raise PacsError(f"{what} {text!r} is not a date (YYYYMMDD or YYYY-MM-DD)")
    try:
        dt.datetime.strptime(compact, "%Y%m%d")
    except ValueError as exc:
        raise PacsError(f"{what} {text!r} is not a calendar date") from exc
    return compact


def parse_date_range(text: str) -> str:
    """``--date`` as a DICOM date range: ``20220101``, ``20220101-20221231``, ``20220101-`` (from), ``-20221231``
    (until), or the same with ISO dates and ``..`` (``2022-01-01..2022-12-31``)."""
    text = text.strip()
    if ".." in text:
        start, _, end = text.partition("..")
    elif re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        start, end = text, text
    elif "-" in text:
        start, _, end = text.partition("-")
    else:
        start = end = text
    first = _parse_date(start, "the first date") if start else ""
    last = _parse_date(end, "the last date") if end else ""
    if not first and not last:
        raise PacsError(f"{text!r} is not a date range (for example 20220101-20221231)")
    if first and last and first > last:
        raise PacsError(f"the date range {text!r} ends before it starts")
    return first if first == last else f"{first}-{last}"


@dataclass(frozen=True)
class StudyQuery:
    """Empty fields match anything. ``date`` is a DICOM date range (see :func:`parse_date_range`)."""

    patient_id: str | None = None
    accession: str | None = None
    date: str | None = None
    modality: str | None = None
    study_uid: str | None = None
    limit: int = 100

    def filters(self) -> dict[str, str]:
        """The matching keys, by DICOM keyword."""
        pairs = {"PatientID": self.patient_id, "AccessionNumber": self.accession, "StudyDate": self.date,
                 "ModalitiesInStudy": self.modality, "StudyInstanceUID": self.study_uid}
        return {key: value for key, value in pairs.items() if value}


@dataclass(frozen=True)
class StudyMatch:
    study_uid: str
    patient_id: str = ""
    patient_name: str = ""
    study_date: str = ""
    accession: str = ""
    modalities: tuple[str, ...] = ()
    description: str = ""
    series: int | None = None
    instances: int | None = None


@dataclass(frozen=True)
class SeriesMatch:
    study_uid: str
    series_uid: str
    modality: str = ""
    number: int | None = None
    description: str = ""
    instances: int | None = None


#: What each search asks the server to return, by DICOM keyword.
STUDY_FIELDS = ("StudyInstanceUID", "PatientID", "PatientName", "StudyDate", "AccessionNumber", "ModalitiesInStudy",
                "StudyDescription", "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances")
SERIES_FIELDS = ("SeriesInstanceUID", "Modality", "SeriesNumber", "SeriesDescription",
                 "NumberOfSeriesRelatedInstances")

Getter = Callable[[str], Any]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return "\\".join(_text(v) for v in value)
    if isinstance(value, dict):  # a DICOM JSON person name
        return str(value.get("Alphabetic", ""))
    return str(value)


def _number(value: Any) -> int | None:
    try:
        return int(str(value)) if value not in (None, "") else None
    except ValueError:
        return None


def _modalities(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return tuple(str(v) for v in value)
    return tuple(v for v in str(value).split("\\") if v)


def study_match(get: Getter) -> StudyMatch:
    """A study from a getter by keyword (DICOM JSON or a dataset)."""
    return StudyMatch(
        study_uid=_text(get("StudyInstanceUID")), patient_id=_text(get("PatientID")),
        patient_name=_text(get("PatientName")), study_date=_text(get("StudyDate")),
        accession=_text(get("AccessionNumber")), modalities=_modalities(get("ModalitiesInStudy")),
        description=_text(get("StudyDescription")), series=_number(get("NumberOfStudyRelatedSeries")),
        instances=_number(get("NumberOfStudyRelatedInstances")))


def series_match(study_uid: str, get: Getter) -> SeriesMatch:
    return SeriesMatch(
        study_uid=study_uid, series_uid=_text(get("SeriesInstanceUID")), modality=_text(get("Modality")),
        number=_number(get("SeriesNumber")), description=_text(get("SeriesDescription")),
        instances=_number(get("NumberOfSeriesRelatedInstances")))

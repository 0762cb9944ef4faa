"""One case's results as a DICOM Comprehensive 3D SR following TID 1500 (Measurement Report), with highdicom, and
the same report read back.

Each vertebra is a planar ROI measurement group (TID 1410): tracking identifier ``<case>/<slice>/<n>``, finding
type "Vertebra", its level as finding site, its findings as qualitative evaluations ("Finding" = OVCF, …, or
NORMAL), the classifier's probabilities and the detector's score as measurements, and its box as a closed polyline:

- on the original image (SCOORD, image pixels) when the slice is an original instance;
- in the original frame of reference (SCOORD3D, patient mm) when the slice is a sagittal reformat of an axial or
  coronal series, since no original image holds it; the corners come from the study slice's position, orientation
  and spacing, which the import keeps in the original patient coordinates.

The observer is the reader (a person) or the model (a device, with its algorithm identification). The report's
patient and study tags and every reference are the original ones, from the DICOM key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import highdicom as hd
import numpy as np
import pydicom
from highdicom.sr import (
    AlgorithmIdentification,
    Comprehensive3DSR,
    DeviceObserverIdentifyingAttributes,
    FindingSite,
    ImageRegion,
    ImageRegion3D,
    Measurement,
    MeasurementReport,
    ObservationContext,
    ObserverContext,
    PersonObserverIdentifyingAttributes,
    PlanarROIMeasurementsAndQualitativeEvaluations,
    QualitativeEvaluation,
    SourceImageForRegion,
    TrackingIdentifier,
)
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from core import __version__
from core.annotations.model import Box, SliceAnnotation, Vertebra
from core.pacs import coding
from core.pacs.errors import PacsError
from core.pacs.references import CaseReference, SeriesReference
from core.review.export import MODEL, ExportSource

MANUFACTURER = "Vertebra Review"
SERIES_NUMBER = 9901


@dataclass(frozen=True)
class SliceGeometry:
    """A study slice's plane in patient coordinates (LPS, mm): the first pixel's centre, the row and column
    directions, and the spacing between columns and between rows."""

    origin: np.ndarray
    row_direction: np.ndarray
    column_direction: np.ndarray
    column_spacing: float
    row_spacing: float

    @classmethod
    def from_dataset(cls, dataset: Dataset) -> SliceGeometry:
        orientation = [float(v) for v in dataset.ImageOrientationPatient]
        row_spacing, column_spacing = (float(v) for v in dataset.PixelSpacing)
        return cls(np.array([float(v) for v in dataset.ImagePositionPatient]), np.array(orientation[:3]),
                   np.array(orientation[3:]), column_spacing, row_spacing)

    def to_patient(self, points: np.ndarray) -> np.ndarray:
        """(x, y) in slice pixel coordinates (0 at the first pixel's outer corner) to patient mm."""
        x, y = points[:, 0:1] - 0.5, points[:, 1:2] - 0.5
        return self.origin + x * self.column_spacing * self.row_direction + y * self.row_spacing * \
            self.column_direction

    def to_pixels(self, points: np.ndarray) -> np.ndarray:
        offset = points - self.origin
        x = offset @ self.row_direction / self.column_spacing + 0.5
        y = offset @ self.column_direction / self.row_spacing + 0.5
        return np.stack([x, y], axis=1)


@dataclass(frozen=True)
class ReportedSlice:
    """One slice's annotation, where it came from in the original study, and (for a reformat) its plane."""

    slice_id: str
    annotation: SliceAnnotation
    series: SeriesReference
    sop_uid: str | None
    geometry: SliceGeometry | None = None


def _corners(box: Box) -> np.ndarray:
    return np.array([[box.x1, box.y1], [box.x2, box.y1], [box.x2, box.y2], [box.x1, box.y2], [box.x1, box.y1]])


def _uid(*parts: str) -> str:
    return generate_uid(entropy_srcs=["vertebra-review-sr", *parts])


def _observer(source: ExportSource) -> ObservationContext:
    if source.kind == MODEL:
        device = DeviceObserverIdentifyingAttributes(uid=_uid("device", str(source.name)), name=str(source.name)[:64],
                                                     manufacturer_name=MANUFACTURER, model_name=str(source.name)[:64])
        return ObservationContext(observer_device_context=ObserverContext(codes.DCM.Device, device))
    # A reader id is one name component: the caret says so (DICOM PN), rather than a family name missing its parts.
    person = PersonObserverIdentifyingAttributes(name=f"{source.name or 'consensus'}^")
    return ObservationContext(observer_person_context=ObserverContext(codes.DCM.Person, person))


def _region(item: ReportedSlice, box: Box) -> ImageRegion | ImageRegion3D:
    corners = _corners(box)
    if item.sop_uid is not None:
        return ImageRegion(hd.sr.GraphicTypeValues.POLYLINE, corners.astype(np.float32),
                           SourceImageForRegion(item.series.sop_class_uid, item.sop_uid))
    if item.geometry is None or not item.series.frame_of_reference_uid:
        raise PacsError(f"slice {item.slice_id} is a reformat, but its plane or the original frame of reference is "
                        f"unknown, so its boxes cannot be placed on the original images")
    return ImageRegion3D(hd.sr.GraphicTypeValues3D.POLYGON, item.geometry.to_patient(corners).astype(np.float32),
                         item.series.frame_of_reference_uid)


def _group(case: str, item: ReportedSlice, number: int, vertebra: Vertebra, source: ExportSource,
           study_uid: str) -> PlanarROIMeasurementsAndQualitativeEvaluations:
    identifier = f"{case}/{item.slice_id}/{number}"
    evaluations = []
    if vertebra.diagnosed:
        names = sorted(d.value for d in vertebra.diseases) or [coding.NORMAL]
        evaluations = [QualitativeEvaluation(coding.FINDING, coding.FINDING_CODES[name]) for name in names]
    measurements = [Measurement(coding.PROBABILITY_CODES[name], float(value), coding.NO_UNITS)
                    for name, value in (vertebra.probabilities or {}).items() if name in coding.PROBABILITY_CODES]
    if vertebra.score is not None:
        measurements.append(Measurement(coding.DETECTOR_SCORE, float(vertebra.score), coding.NO_UNITS))
    algorithm = AlgorithmIdentification(str(source.name), __version__) if source.kind == MODEL else None
    return PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=TrackingIdentifier(uid=_uid(study_uid, identifier, source.who), identifier=identifier),
        referenced_region=_region(item, vertebra.box),
        finding_type=coding.VERTEBRA,
        finding_sites=[FindingSite(coding.LEVEL_CODES[vertebra.level])] if vertebra.level else None,
        qualitative_evaluations=evaluations or None,
        measurements=measurements or None,
        algorithm_id=algorithm,
    )


def _evidence(reference: CaseReference, slices: list[ReportedSlice]) -> list[Dataset]:
    """Stand-ins for the referenced original instances (the patient and study tags from the key, each instance's
    UIDs): highdicom copies the patient and study from them and lists them as the report's evidence."""
    wanted: dict[str, SeriesReference] = {}
    sops: dict[str, list[str]] = {}
    for item in slices:
        wanted[item.series.series_uid] = item.series
        chosen = [item.sop_uid] if item.sop_uid else list(item.series.instances)
        sops.setdefault(item.series.series_uid, [])
        sops[item.series.series_uid] += [s for s in chosen if s not in sops[item.series.series_uid]]
    evidence = []
    for series_uid, uids in sops.items():
        for sop in uids:
            dataset = Dataset()
            for tag, value in reference.study.items():
                setattr(dataset, tag, value or None)
            dataset.SeriesInstanceUID, dataset.SOPInstanceUID = series_uid, sop
            dataset.SOPClassUID = wanted[series_uid].sop_class_uid
            dataset.Modality = wanted[series_uid].modality or "CT"
            evidence.append(dataset)
    return evidence


def content_digest(slices: list[ReportedSlice], source: ExportSource) -> str:
    """A digest of what a report says: the same results give the same report UID, so sending twice stores once."""
    digest = hashlib.sha256(source.who.encode())
    for item in slices:
        for vertebra in item.annotation.vertebrae:
            digest.update(repr((item.slice_id, vertebra.box.as_list(), vertebra.label, vertebra.level,
                                sorted((vertebra.probabilities or {}).items()), vertebra.score)).encode())
    return digest.hexdigest()


def report_uids(reference: CaseReference, source: ExportSource, digest: str) -> tuple[str, str]:
    """(series UID, SOP instance UID): one report series per case and source; one instance per distinct content."""
    series = _uid(reference.study_uid, reference.case, source.who, "series")
    return series, _uid(reference.study_uid, reference.case, source.who, digest)


def build_report(reference: CaseReference, slices: list[ReportedSlice], source: ExportSource) -> Comprehensive3DSR:
    """The case's Comprehensive 3D SR: every vertebra of ``slices``, as ``source`` saw it."""
    if not slices:
        raise PacsError(f"{reference.case}: nothing to report for {source.describe()}")
    groups = [_group(reference.case, item, number, vertebra, source, reference.study_uid)
              for item in slices for number, vertebra in enumerate(item.annotation.vertebrae, start=1)]
    report = MeasurementReport(observation_context=_observer(source), procedure_reported=coding.PROCEDURE,
                               imaging_measurements=groups or None, title=coding.TITLE)
    series_uid, sop_uid = report_uids(reference, source, content_digest(slices, source))
    document = Comprehensive3DSR(
        evidence=_evidence(reference, slices), content=report, series_instance_uid=series_uid,
        series_number=SERIES_NUMBER, sop_instance_uid=sop_uid, instance_number=1, manufacturer=MANUFACTURER,
        is_complete=True, is_final=False, is_verified=False)
    document.SeriesDescription = f"Vertebra Review: {source.describe()}"[:64]
    scheme = Dataset()
    scheme.CodingSchemeDesignator, scheme.CodingSchemeName = coding.PRIVATE_SCHEME, coding.PRIVATE_SCHEME_NAME
    scheme.CodingSchemeResponsibleOrganization = MANUFACTURER
    document.CodingSchemeIdentificationSequence = [scheme]
    document.SoftwareVersions = __version__
    return document


# -- reading back -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReportedVertebra:
    """A vertebra as a report says it: its identifier (``case/slice/n``), level, findings (class codes), the
    numbers by class code (and ``DETSCORE``), and its polyline (image pixels, or patient mm for SCOORD3D)."""

    identifier: str
    level: str | None
    findings: tuple[str, ...]
    values: Mapping[str, float]
    points: np.ndarray
    referenced_sop: str | None
    frame_of_reference: str | None


def _code_of(item: Any) -> tuple[str, str]:
    return str(item.scheme_designator), str(item.value)


def read_report(dataset: Dataset | str) -> list[ReportedVertebra]:
    """The vertebrae of one of our reports (a dataset or a file), through highdicom's TID 1500 reader."""
    if not isinstance(dataset, Dataset):
        dataset = pydicom.dcmread(dataset)
    document = hd.sr.Comprehensive3DSR.from_dataset(dataset)
    content = document.content
    found = []
    for group in content.get_planar_roi_measurement_groups():
        sites = [coding.level_of(*_code_of(site.value)) for site in group.finding_sites]
        findings = tuple(sorted(f for f in (coding.finding_of(*_code_of(e.value))
                                            for e in group.get_qualitative_evaluations()) if f))
        values: dict[str, float] = {}
        for measurement in group.get_measurements():
            scheme, value = _code_of(measurement.name)
            name = coding.probability_of(scheme, value) or (value if value == coding.DETECTOR_SCORE.value else None)
            if name is not None:
                values[name] = float(measurement.value)
        roi = group.roi
        sop = frame = None
        if isinstance(roi, hd.sr.Scoord3DContentItem):
            frame = str(roi.ReferencedFrameOfReferenceUID)
        else:
            sop = str(roi.ContentSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID)
        found.append(ReportedVertebra(str(group.tracking_identifier), next((s for s in sites if s), None), findings,
                                      values, np.asarray(roi.value, dtype=float), sop, frame))
    return found

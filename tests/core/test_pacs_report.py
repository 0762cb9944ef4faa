"""The DICOM SR of one case (TID 1500 with highdicom): coded findings, the observer, boxes on the original image
(SCOORD) or in the original frame of reference (SCOORD3D, for a reformat), validated by dciodvfy and read back."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pydicom
import pytest
from pydicom.sr.codedict import codes

from core.annotations.model import Box, Disease, SliceAnnotation, Vertebra
from core.pacs import coding
from core.pacs.errors import KeyFileError
from core.pacs.references import CaseReference, DicomKey, SeriesReference, check_outside, dicom_key_path
from core.pacs.report import ReportedSlice, SliceGeometry, build_report, read_report
from core.review.export import ExportSource

CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
STUDY = {"PatientID": "P-1", "PatientName": "Test^Patient", "PatientBirthDate": "19500101", "PatientSex": "F",
         "IssuerOfPatientID": "", "StudyInstanceUID": "1.2.826.0.1.3680043.8.498.1", "StudyDate": "20240101",
         "StudyTime": "101010", "StudyID": "7", "AccessionNumber": "ACC-1", "ReferringPhysicianName": "",
         "StudyDescription": "CT spine"}
SERIES = SeriesReference("1.2.826.0.1.3680043.8.498.2", CT_STORAGE, "1.2.826.0.1.3680043.8.498.3", "CT",
                         tuple(f"1.2.826.0.1.3680043.8.498.2.{n}" for n in range(1, 6)))
#: A sagittal plane (rows run head to foot), 0.5 mm pixels: as the import writes for a reformat.
GEOMETRY = SliceGeometry(np.array([-3.0, -200.0, -700.0]), np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, -1.0]),
                         0.5, 0.5)


def _vertebrae() -> tuple[Vertebra, ...]:
    fractured = Vertebra(Box(10.5, 20.0, 60.0, 45.5), frozenset({Disease.OVCF, Disease.KD}), level="L1",
                         probabilities={"OVCF": 0.91, "OF": 0.1, "SN": 0.02, "KD": 0.64, "PS": 0.01, "NORMAL": 0.03},
                         score=0.97)
    normal = Vertebra(Box(12.0, 50.0, 61.0, 75.0), frozenset(), level="L2", source="ana")
    unknown_level = Vertebra(Box(14.0, 80.0, 62.0, 99.0), frozenset({Disease.SN}))
    return fractured, normal, unknown_level


def _case(sop: str | None) -> tuple[CaseReference, list[ReportedSlice]]:
    reference = CaseReference("case-0001", dict(STUDY), {SERIES.series_uid: SERIES})
    annotation = SliceAnnotation(128, 128, _vertebrae())
    return reference, [ReportedSlice("s001", annotation, SERIES, sop, None if sop else GEOMETRY)]


def dciodvfy_errors(path) -> list[str]:
    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy is not installed (Debian package dicom3tools)")
    run = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]


SOURCES = [ExportSource.model("demo-v1"), ExportSource.reader("ana"), ExportSource.consensus()]


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("on_image", [True, False], ids=["scoord-on-image", "scoord3d-reformat"])
def test_report_reads_back_to_the_same_vertebrae_and_validates(tmp_path, source, on_image):
    reference, slices = _case(SERIES.instances[2] if on_image else None)
    document = build_report(reference, slices, source)
    path = tmp_path / "sr.dcm"
    document.save_as(path, enforce_file_format=True)
    assert dciodvfy_errors(path) == []
    back = read_report(path)
    wanted = _vertebrae()
    assert [v.identifier for v in back] == ["case-0001/s001/1", "case-0001/s001/2", "case-0001/s001/3"]
    assert [v.level for v in back] == [v.level for v in wanted]
    assert [v.findings for v in back] == [("KD", "OVCF"), ("NORMAL",), ("SN",)]
    assert back[0].values == {**wanted[0].probabilities, "DETSCORE": 0.97}
    for got, vertebra in zip(back, wanted, strict=True):
        points = got.points if on_image else GEOMETRY.to_pixels(got.points)
        assert np.allclose(points[0], [vertebra.box.x1, vertebra.box.y1], atol=1e-3)
        assert np.allclose(points[2], [vertebra.box.x2, vertebra.box.y2], atol=1e-3)
        assert got.referenced_sop == (SERIES.instances[2] if on_image else None)
        assert got.frame_of_reference == (None if on_image else SERIES.frame_of_reference_uid)


def test_report_carries_the_original_patient_study_and_evidence():
    reference, slices = _case(None)
    document = build_report(reference, slices, ExportSource.reader("ana"))
    assert document.StudyInstanceUID == STUDY["StudyInstanceUID"]
    assert document.PatientID == "P-1" and document.AccessionNumber == "ACC-1"
    evidence = {item.ReferencedSOPInstanceUID for series in document.CurrentRequestedProcedureEvidenceSequence
                for ref in series.ReferencedSeriesSequence for item in ref.ReferencedSOPSequence}
    assert evidence == set(SERIES.instances)
    assert document.Modality == "SR" and document.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"


def test_same_content_same_uid_changed_content_new_uid_same_series():
    reference, slices = _case(None)
    first = build_report(reference, slices, ExportSource.reader("ana"))
    again = build_report(reference, slices, ExportSource.reader("ana"))
    moved = [ReportedSlice("s001", slices[0].annotation.with_changes(vertebrae=_vertebrae()[:2]), SERIES, None,
                           GEOMETRY)]
    changed = build_report(reference, moved, ExportSource.reader("ana"))
    assert first.SOPInstanceUID == again.SOPInstanceUID != changed.SOPInstanceUID
    assert first.SeriesInstanceUID == changed.SeriesInstanceUID


def test_levels_use_the_standard_snomed_codes_and_findings_the_private_scheme():
    assert coding.LEVEL_CODES["L1"] == codes.SCT.L1Vertebra
    assert coding.LEVEL_CODES["T12"].value == "23215003"
    assert coding.LEVEL_CODES["S1"].scheme_designator == coding.PRIVATE_SCHEME
    assert {c.scheme_designator for c in coding.FINDING_CODES.values()} == {coding.PRIVATE_SCHEME}
    assert all(len(meaning) <= 64 for _, _, _, meaning in coding.coding_table())  # DICOM LO


def test_a_missing_dicom_key_is_refused_with_what_to_do(tmp_path):
    with pytest.raises(KeyFileError, match="pacs get"):
        DicomKey.load(dicom_key_path(tmp_path / "study.key.csv"))


def test_a_key_file_inside_the_study_is_refused(tmp_path):
    (tmp_path / "study").mkdir()
    with pytest.raises(KeyFileError, match="outside the study"):
        check_outside(tmp_path / "study" / "key.csv", tmp_path / "study")


def test_dicom_key_round_trip(tmp_path):
    reference, _ = _case(None)
    key = DicomKey(tmp_path / "k.dicom.json", {"case-0001": reference})
    key.save()
    again = DicomKey.load(tmp_path / "k.dicom.json").case("case-0001")
    assert again.study == reference.study and again.series == reference.series
    with pytest.raises(KeyFileError, match="case-0002"):
        DicomKey.load(tmp_path / "k.dicom.json").case("case-0002")


def test_a_reformat_needs_its_plane():
    reference, slices = _case(None)
    bare = [ReportedSlice("s001", slices[0].annotation, SERIES, None, None)]
    with pytest.raises(Exception, match="reformat"):
        build_report(reference, bare, ExportSource.reader("ana"))


def test_geometry_round_trip_from_a_dataset():
    dataset = pydicom.Dataset()
    dataset.ImagePositionPatient, dataset.ImageOrientationPatient = [1, 2, 3], [0, 1, 0, 0, 0, -1]
    dataset.PixelSpacing = [0.8, 0.6]
    geometry = SliceGeometry.from_dataset(dataset)
    points = np.array([[0.5, 0.5], [10.0, 20.0]])
    assert np.allclose(geometry.to_patient(points)[0], [1, 2, 3])
    assert np.allclose(geometry.to_pixels(geometry.to_patient(points)), points)

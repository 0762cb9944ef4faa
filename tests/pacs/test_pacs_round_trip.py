"""The round trip against a real Orthanc, through the command line: add, test, find, get (into the anonymising
import), read, send (a DICOM SR) and the SR is in Orthanc, in the original study, references the original UIDs,
passes dciodvfy and reads back to the same vertebrae; sending again stores nothing twice. Over DICOMweb and DIMSE."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pydicom
import pytest
from orthanc_server import AET, PASSWORD, PATIENT_ID, USER

from core.annotations.model import Box, Disease, SliceAnnotation, Vertebra
from core.pacs.credentials import password_variable
from core.pacs.report import SliceGeometry, read_report
from core.study.layout import Study
from desktop.cli.main import main

pytestmark = pytest.mark.slow


@pytest.fixture
def user_config(tmp_path, monkeypatch):
    monkeypatch.setenv("VERTEBRA_REVIEW_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv(password_variable("web"), PASSWORD)
    return tmp_path / "config"


def add_servers(orthanc) -> None:
    assert main(["pacs", "add", "web", "--url", orthanc.dicomweb_url, "--user", USER, "--timeout", "20"]) == 0
    assert main(["pacs", "add", "dimse", "--host", "127.0.0.1", "--port", str(orthanc.dicom_port), "--ae", AET,
                 "--timeout", "20"]) == 0


def annotate(study: Study, reader: str) -> dict[str, SliceAnnotation]:
    """A reader's boxes on two of the reformatted slices (512 x 41 pixels)."""
    written = {}
    for slice_id, x in (("s005", 180.0), ("s006", 200.0)):
        image = study.read_image("case-0001", slice_id)
        annotation = SliceAnnotation(image.width, image.height, (
            Vertebra(Box(x, 2.0, x + 60.0, 38.0), frozenset({Disease.OVCF}), level="T12", source=reader),
            Vertebra(Box(x + 70.0, 2.5, x + 128.0, 37.5), frozenset(), level="T11", source=reader),
        ), reader=reader)
        study.save_annotation(annotation, "case-0001", slice_id, reader=reader)
        written[slice_id] = annotation
    return written


def reports_in_orthanc(orthanc, study_uid: str, reader: str) -> list[pydicom.Dataset]:
    found = []
    for study in orthanc.get_json("/studies?expand"):
        if study["MainDicomTags"]["StudyInstanceUID"] != study_uid:
            continue
        for series_id in study["Series"]:
            series = orthanc.get_json(f"/series/{series_id}")
            if series["MainDicomTags"].get("Modality") != "SR" or reader not in series["MainDicomTags"].get(
                    "SeriesDescription", ""):
                continue
            for instance in series["Instances"]:
                from io import BytesIO

                found.append(pydicom.dcmread(BytesIO(orthanc._request("GET", f"/instances/{instance}/file"))))
    return found


@pytest.mark.parametrize(("server", "reader"), [("web", "ana"), ("dimse", "ben")])
def test_find_get_send_round_trip(orthanc, user_config, tmp_path, capsys, server, reader):
    ct = orthanc.studies["ct"]
    add_servers(orthanc)
    assert main(["pacs", "test", server]) == 0
    assert main(["pacs", "find", server, "--patient", PATIENT_ID, "--modality", "CT", "--series"]) == 0
    out = capsys.readouterr().out
    assert ct.study_uid in out and ct.series_uid in out and orthanc.studies["mr"].study_uid not in out

    study_root = tmp_path / "study"
    assert main(["pacs", "get", server, ct.study_uid, str(study_root), "--sagittal"]) == 0
    study = Study.open(study_root)
    assert study.cases() == ["case-0001"] and len(study.slices("case-0001")) == 11
    key_file = tmp_path / "study.key.csv"
    assert key_file.is_file() and (tmp_path / "study.key.dicom.json").is_file()
    assert PATIENT_ID not in "".join(p.read_text(errors="replace") for p in study_root.rglob("*.json"))

    written = annotate(study, reader)
    saved = tmp_path / "sr"
    assert main(["pacs", "send", server, str(study_root), "--reader", reader, "--save", str(saved)]) == 0
    assert "sent 4 vertebrae" in capsys.readouterr().out

    stored = reports_in_orthanc(orthanc, ct.study_uid, reader)
    assert len(stored) == 1
    report = stored[0]
    assert report.PatientID == PATIENT_ID and report.StudyInstanceUID == ct.study_uid
    evidence = {item.ReferencedSOPInstanceUID for entry in report.CurrentRequestedProcedureEvidenceSequence
                for series in entry.ReferencedSeriesSequence for item in series.ReferencedSOPSequence}
    assert evidence == set(ct.sop_uids)
    path = tmp_path / "stored.dcm"
    report.save_as(path, enforce_file_format=True)
    if shutil.which("dciodvfy"):
        run = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
        assert [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")] == []

    back = read_report(path)
    assert [v.identifier for v in back] == [f"case-0001/{s}/{n}" for s in ("s005", "s006") for n in (1, 2)]
    assert {v.frame_of_reference for v in back} == {ct.frame_of_reference_uid}
    for got in back:
        _, slice_id, number = got.identifier.split("/")
        vertebra = written[slice_id].vertebrae[int(number) - 1]
        geometry = SliceGeometry.from_dataset(pydicom.dcmread(study.image_path("case-0001", slice_id)))
        corners = geometry.to_pixels(got.points)
        assert np.allclose(corners[0], [vertebra.box.x1, vertebra.box.y1], atol=1e-2)
        assert np.allclose(corners[2], [vertebra.box.x2, vertebra.box.y2], atol=1e-2)
        assert got.level == vertebra.level
        assert got.findings == (tuple(sorted(d.value for d in vertebra.diseases)) or ("NORMAL",))

    assert main(["pacs", "send", server, str(study_root), "--reader", reader]) == 0
    assert "unchanged" in capsys.readouterr().out
    assert len(reports_in_orthanc(orthanc, ct.study_uid, reader)) == 1


def test_an_interrupted_transfer_resumes_and_the_study_never_holds_half_a_case(orthanc, user_config, tmp_path):
    from core.pacs.retrieve import retrieve_study
    from core.pacs.servers import PacsServer
    from core.progress import run
    from core.study.importer import ImportOptions

    ct = orthanc.studies["ct"]
    server = PacsServer("dimse", host="127.0.0.1", port=orthanc.dicom_port, called_ae=AET, timeout_s=20)
    study_root, key, downloads = tmp_path / "study", tmp_path / "key.csv", tmp_path / "downloads"
    job = retrieve_study(server, ct.study_uid, study_root, key, options=ImportOptions(sagittal=True),
                         downloads=downloads)
    for event in job:
        if event.stage == "retrieve" and event.step == 7:
            job.close()  # the transfer is cut here
            break
    assert not (study_root / "images").exists()
    report = run(retrieve_study(server, ct.study_uid, study_root, key, options=ImportOptions(sagittal=True),
                                downloads=downloads))
    assert (report.resumed, report.downloaded) == (7, 13)
    assert Study.open(study_root).cases() == ["case-0001"]
    assert not any(downloads.iterdir())  # the originals are removed once imported

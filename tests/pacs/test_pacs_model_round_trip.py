"""The issue's round trip with the model in the middle: a phantom case (the demo study's DICOM slices) is put into
a real Orthanc, found, retrieved into a new study, diagnosed by the bundled demo models, and the model's result sent
back: the SR lands in the phantom's original study, names the model as its observer, and reads back to the
vertebrae the model wrote."""

from __future__ import annotations

import pydicom
import pytest

from core.pacs.report import read_report
from core.study.layout import Study
from desktop.cli.main import main
from tests.bundled_models import BUNDLED_ID
from tests.conftest import REPO
from tests.pacs.test_pacs_round_trip import add_servers, reports_in_orthanc, user_config  # noqa: F401

pytestmark = pytest.mark.slow


def test_find_get_diagnose_send_a_phantom_case(orthanc, user_config, tmp_path, capsys):  # noqa: F811
    files = sorted((REPO / "resources" / "demo" / "images" / "case-0001").glob("s00[1-3].dcm"))
    phantom = orthanc.load_series(files, "phantom", patient_id="VR-PHANTOM-1", accession="ACC-PHANTOM")
    add_servers(orthanc)
    assert main(["pacs", "find", "web", "--patient", "VR-PHANTOM-1"]) == 0
    assert phantom.study_uid in capsys.readouterr().out

    study_root = tmp_path / "study"
    assert main(["pacs", "get", "dimse", phantom.study_uid, str(study_root)]) == 0
    study = Study.open(study_root)
    keys = study.all_slices()
    assert len(keys) == 3
    model_id = BUNDLED_ID  # its results where the study keeps a model's: predictions/<model>/<case>/<slice>.json
    assert main(["diagnose", str(study_root), "--models", str(REPO / "resources" / "demo" / "models"),
                 "--out", str(study.root / "predictions" / model_id)]) == 0
    predicted = {key: study.load_annotation(*key, model=model_id) for key in keys}
    assert all(p is not None for p in predicted.values())
    vertebrae = sum(len(p.vertebrae) for p in predicted.values())
    assert vertebrae >= 3  # the demo model finds the phantom's vertebrae

    capsys.readouterr()
    assert main(["pacs", "send", "web", str(study_root), "--model", model_id, "--save", str(tmp_path / "sr")]) == 0
    assert f"sent {vertebrae} vertebrae" in capsys.readouterr().out
    stored = reports_in_orthanc(orthanc, phantom.study_uid, model_id)
    assert len(stored) == 1 and stored[0].StudyInstanceUID == phantom.study_uid
    assert stored[0].PatientID == "VR-PHANTOM-1"
    path = tmp_path / "stored.dcm"
    stored[0].save_as(path, enforce_file_format=True)
    back = read_report(path)
    assert len(back) == vertebrae
    for got in back:
        _, slice_id, number = got.identifier.split("/")
        vertebra = predicted[("case-0001", slice_id)].vertebrae[int(number) - 1]
        assert got.level == vertebra.level
        assert got.findings == (tuple(sorted(d.value for d in vertebra.diseases)) or ("NORMAL",))
    evidence = {item.ReferencedSOPInstanceUID for entry in stored[0].CurrentRequestedProcedureEvidenceSequence
                for series in entry.ReferencedSeriesSequence for item in series.ReferencedSOPSequence}
    assert evidence <= set(phantom.sop_uids) and evidence
    assert isinstance(pydicom.dcmread(path).ContentSequence, pydicom.Sequence)

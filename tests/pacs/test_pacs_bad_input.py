"""Bad input and faults through the command line, against the real Orthanc: each is one clear line and exit 1."""

from __future__ import annotations

import pytest
from orthanc_server import AET, PASSWORD, USER, free_port

from core.pacs.credentials import password_variable
from desktop.cli.main import main

pytestmark = pytest.mark.slow


@pytest.fixture
def servers(orthanc, tmp_path, monkeypatch):
    monkeypatch.setenv("VERTEBRA_REVIEW_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv(password_variable("web"), PASSWORD)
    monkeypatch.setenv(password_variable("badpass"), "wrong")
    closed = free_port()
    for argv in (["web", "--url", orthanc.dicomweb_url, "--user", USER],
                 ["badpass", "--url", orthanc.dicomweb_url, "--user", USER],
                 ["down-web", "--url", f"http://127.0.0.1:{closed}/dicom-web"],
                 ["down-dimse", "--host", "127.0.0.1", "--port", str(closed), "--ae", AET],
                 ["wrong-ae", "--host", "127.0.0.1", "--port", str(orthanc.dicom_port), "--ae", "NOT-ORTHANC"],
                 ["dimse", "--host", "127.0.0.1", "--port", str(orthanc.dicom_port), "--ae", AET]):
        assert main(["pacs", "add", *argv, "--timeout", "10"]) == 0
    return orthanc


def one_error(capsys) -> str:
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("vertebra-review: error")]
    assert len(errors) == 1, errors
    return errors[0]


@pytest.mark.parametrize(("argv", "message"), [
    (["pacs", "test", "down-web"], "cannot connect"),
    (["pacs", "test", "down-dimse"], "cannot connect"),
    # Orthanc refuses a wrong called AE title, or under load aborts the association: the message names the title
    (["pacs", "test", "wrong-ae"], "the association (check its AE title 'NOT-ORTHANC'"),
    (["pacs", "test", "badpass"], "refused our credentials (401)"),
    (["pacs", "test", "nowhere"], "no server named 'nowhere'"),
    (["pacs", "find", "web", "--date", "2022-13-01"], "not a calendar date"),
])
def test_connection_faults_are_one_line(servers, capsys, argv, message):
    assert main(argv) == 1
    assert message in one_error(capsys)


@pytest.mark.parametrize("server", ["web", "dimse"])
def test_unknown_study_uid(servers, capsys, tmp_path, server):
    assert main(["pacs", "get", server, "1.2.826.0.1.3680043.8.498.999", str(tmp_path / "study")]) == 1
    assert "has no study 1.2.826.0.1.3680043.8.498.999" in one_error(capsys)
    assert not (tmp_path / "study").exists()


def test_a_study_without_ct_is_refused(servers, capsys, tmp_path):
    assert main(["pacs", "get", "web", servers.studies["mr"].study_uid, str(tmp_path / "study")]) == 1
    assert "no CT series to retrieve (its modalities: MR)" in one_error(capsys)


def test_send_without_the_key_file_is_refused(servers, capsys, tmp_path):
    from core.study.layout import Study

    Study.create(tmp_path / "study")
    assert main(["pacs", "send", "web", str(tmp_path / "study"), "--reader", "ana"]) == 1
    assert "no DICOM key here" in one_error(capsys)


def test_a_key_file_inside_the_study_is_refused_before_anything_is_fetched(servers, capsys, tmp_path):
    study = tmp_path / "study"
    assert main(["pacs", "get", "web", servers.studies["ct"].study_uid, str(study),
                 "--key-file", str(study / "key.csv")]) == 1
    assert "must be kept outside the study" in one_error(capsys)

"""The PACS server list, passwords (environment and keyring, never the file) and query parsing: no server needed."""

from __future__ import annotations

import json
from pathlib import Path

import keyring
import pytest
from keyring.backends.fail import Keyring as NoKeyring

from core.pacs.credentials import password_for, password_variable, store_password
from core.pacs.errors import PacsError
from core.pacs.query import StudyQuery, parse_date_range
from core.pacs.servers import PacsServer, ServerList, check_ca_bundle


def test_servers_round_trip_through_the_user_file(tmp_path):
    servers = ServerList(path=tmp_path / "pacs_servers.json")
    servers.add(PacsServer("web", url="https://pacs.example.org/dicom-web", user="ana"))
    servers.add(PacsServer("scanner", host="10.0.0.5", port=104, called_ae="ORTHANC"))
    servers.save()
    again = ServerList.load(tmp_path / "pacs_servers.json")
    assert again.names() == ["web", "scanner"]
    assert again.get("scanner").address == "ORTHANC@10.0.0.5:104"
    assert again.get("web").kind == "dicomweb"
    assert "password" not in (tmp_path / "pacs_servers.json").read_text()


def test_a_second_server_of_the_same_name_needs_replace(tmp_path):
    servers = ServerList(path=tmp_path / "s.json")
    servers.add(PacsServer("web", url="http://a/dicom-web"))
    with pytest.raises(PacsError, match="already listed"):
        servers.add(PacsServer("web", url="http://b/dicom-web"))
    servers.add(PacsServer("web", url="http://b/dicom-web"), replace_existing=True)
    assert servers.get("web").url == "http://b/dicom-web"


def test_a_password_in_the_file_is_refused(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"format": "vertebra-review-pacs-servers", "version": 1,
                                "servers": [{"name": "web", "url": "http://a/x", "password": "oops"}]}))
    with pytest.raises(PacsError, match="passwords are never kept"):
        ServerList.load(path)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"url": "ftp://a/x"}, "not an http"),
    ({"url": "https://ana:pw@a/x"}, "not in the URL"),
    ({"host": "a", "port": 70000, "called_ae": "X"}, "port"),
    ({"host": "a", "port": 104, "called_ae": "A_TITLE_LONGER_THAN_16"}, "AE title"),
    ({"host": "a", "port": 104}, "AE title"),
    ({}, "not both or neither"),
])
def test_bad_server_entries_say_what_is_wrong(kwargs, message):
    with pytest.raises(PacsError, match=message):
        PacsServer("x", **kwargs)


def test_unknown_server_names_the_known_ones(tmp_path):
    servers = ServerList([PacsServer("web", url="http://a/x")], tmp_path / "s.json")
    with pytest.raises(PacsError, match=r"no server named .other.*web"):
        servers.get("other")


def test_password_from_the_environment(monkeypatch):
    server = PacsServer("my-pacs", url="http://a/x", user="ana")
    monkeypatch.setenv(password_variable("my-pacs"), "pw")
    assert password_variable("my-pacs") == "VERTEBRA_REVIEW_PACS_PASSWORD_MY_PACS"
    assert password_for(server) == "pw"
    assert password_for(PacsServer("anon", url="http://a/x")) is None


def test_without_a_keyring_the_message_names_the_variable(monkeypatch):
    monkeypatch.delenv(password_variable("web"), raising=False)
    previous = keyring.get_keyring()
    keyring.set_keyring(NoKeyring())
    try:
        server = PacsServer("web", url="http://a/x", user="ana")
        with pytest.raises(PacsError, match=r"keyring is not available.*VERTEBRA_REVIEW_PACS_PASSWORD_WEB"):
            password_for(server)
        with pytest.raises(PacsError, match="VERTEBRA_REVIEW_PACS_PASSWORD_WEB"):
            store_password(server, "pw")
    finally:
        keyring.set_keyring(previous)


@pytest.mark.parametrize(("text", "expected"), [
    ("20220101", "20220101"), ("20220101-20221231", "20220101-20221231"), ("20220101-", "20220101-"),
    ("-20221231", "-20221231"), ("2022-01-01..2022-12-31", "20220101-20221231"), ("2022-03-04", "20220304"),
])
def test_date_ranges(text, expected):
    assert parse_date_range(text) == expected


@pytest.mark.parametrize("text", ["2022", "20221301", "20221231-20220101", "-", "yesterday"])
def test_bad_date_ranges(text):
    with pytest.raises(PacsError):
        parse_date_range(text)


def test_a_query_sends_only_what_was_asked():
    assert StudyQuery(patient_id="P1", modality="CT").filters() == {"PatientID": "P1", "ModalitiesInStudy": "CT"}


def test_a_ca_file_is_checked_when_the_server_is_added(tmp_path):
    """A PEM bundle (certifi's) is taken; a missing file, a folder, an empty file, a key or text without a
    certificate, and a CA file for a plain http:// or DIMSE server are refused, naming the file."""
    import certifi

    url = "https://pacs.example.org/dicom-web"
    assert check_ca_bundle(certifi.where(), url) == Path(certifi.where()).absolute()
    (tmp_path / "empty.pem").write_bytes(b"")
    (tmp_path / "key.pem").write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    (tmp_path / "binary.der").write_bytes(bytes(range(256)) * 4)
    for name, message in [("missing.pem", "no such CA file"), (".", "is not a file of CA certificates"),
                          ("empty.pem", "holds no certificate"), ("key.pem", "holds no certificate"),
                          ("binary.der", "holds no certificate")]:
        with pytest.raises(PacsError, match=message) as info:
            check_ca_bundle(tmp_path / name, url)
        assert info.value.path == str((tmp_path / name).absolute())
    for other in ("http://pacs.example.org/dicom-web", None):
        with pytest.raises(PacsError, match="for an https:// DICOMweb server"):
            check_ca_bundle(Path(certifi.where()), other)

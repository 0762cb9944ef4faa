"""File › Open from PACS… and File › Send results to PACS… as a user drives them: the query form, Search in the
background, the result table, Retrieve (with Cancel, and a second try that resumes) into a study that opens in the
window; the send dialog's choices, Send, and a second send that stores nothing. Against the real Orthanc of
``tests/pacs`` (skipped with the reason where it is not installed); without a server: no server configured, a server
that does not answer, and a study without a DICOM key."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from core.annotations.model import Box, Disease, SliceAnnotation, Vertebra
from core.pacs.credentials import password_variable
from core.pacs.servers import PacsServer, ServerList
from core.study.layout import Study
from desktop.dialogs.pacs_open_dialog import PacsOpenDialog
from desktop.dialogs.pacs_parts import JobProgress
from desktop.dialogs.pacs_send_dialog import PacsSendDialog
from tests.desktop.workspace_helpers import FakePipeline, make_study, shown_window
from tests.pacs import conftest as pacs_conftest
from tests.pacs.orthanc_server import ACCESSION, AET, PASSWORD, PATIENT_ID, USER

#: The real Orthanc of the PACS tests (skipped, with the reason, where Orthanc is not installed).
orthanc = pacs_conftest.orthanc


def add_servers(*servers: PacsServer) -> None:
    listed = ServerList.load()
    for server in servers:
        listed.add(server)
    listed.save()


def opened_window(qtbot, study_root: Path | None = None):
    """The main window (with the fake models, never the real ones), ``study_root`` open when given."""
    from desktop.main_window import MainWindow

    window = MainWindow(reader="r1", pipeline_loader=lambda path: FakePipeline())
    qtbot.addWidget(window)
    window.resize(1200, 800)
    window.show()
    if study_root is not None:
        with qtbot.waitSignal(window.studyOpened, timeout=20_000):
            window.open_path(study_root)
    return window


def click(qtbot, button: QtWidgets.QAbstractButton) -> None:
    assert button.isVisible() and button.isEnabled(), f"{button.text()} cannot be clicked"
    qtbot.mouseClick(button, QtCore.Qt.MouseButton.LeftButton, pos=QtCore.QPoint(8, button.height() // 2))


def type_into(qtbot, field: QtWidgets.QLineEdit, text: str) -> None:
    field.selectAll()
    qtbot.keyClick(field, QtCore.Qt.Key.Key_Delete)
    qtbot.keyClicks(field, text)


def menu_action(window, text: str) -> QtGui.QAction:
    return next(a for a in window.findChildren(QtGui.QAction) if a.text().replace("&", "") == text)


def open_dialog(qtbot, window) -> PacsOpenDialog:
    menu_action(window, "Open from PACS…").trigger()
    dialog = window.pacs.open_dialog
    assert dialog is not None
    qtbot.waitUntil(dialog.isVisible)
    return dialog


def send_dialog(qtbot, window) -> PacsSendDialog:
    menu_action(window, "Send results to PACS…").trigger()
    dialog = window.pacs.send_dialog
    assert dialog is not None
    qtbot.waitUntil(dialog.isVisible)
    return dialog


@pytest.fixture()
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers (a server that hangs)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


# -- without a server ------------------------------------------------------------------------------------------------
def test_with_no_server_configured_both_dialogs_say_how_to_add_one(qtbot, tmp_path, config_dir):
    window = shown_window(qtbot, make_study(tmp_path / "study").root)
    dialog = open_dialog(qtbot, window)
    note = dialog.findChild(QtWidgets.QLabel, "pacs-no-servers")
    assert note is not None and note.isVisible()
    assert "vertebra-review pacs add NAME --url" in note.text() and str(config_dir / "pacs_servers.json") in note.text()
    assert dialog.findChild(QtWidgets.QPushButton, "pacs-search") is None  # no empty form
    dialog.close()
    qtbot.waitUntil(lambda: window.pacs.open_dialog is None)

    (tmp_path / "study.key.dicom.json").write_text("{}")  # a key, so that the missing server is what is said
    dialog = send_dialog(qtbot, window)
    assert dialog.findChild(QtWidgets.QLabel, "pacs-no-servers").isVisible()
    assert dialog.findChild(QtWidgets.QPushButton, "pacs-send") is None


def test_a_server_that_does_not_answer_is_one_line_and_the_window_goes_on(qtbot, silent_port):
    add_servers(PacsServer("hung", url=f"http://127.0.0.1:{silent_port}/dicom-web", timeout_s=1.0))
    window = shown_window(qtbot)
    dialog = open_dialog(qtbot, window)
    assert dialog.modality.text() == "CT" and dialog.chosen_server().name == "hung"
    type_into(qtbot, dialog.patient, "P-1")
    started = time.monotonic()
    click(qtbot, dialog.search_button)
    assert time.monotonic() - started < 0.5  # the click returned at once: the search is on a worker
    assert dialog.busy and not dialog.search_button.isEnabled() and dialog.progress.isVisible()
    assert "Searching hung" in dialog.progress.text.text()
    qtbot.wait(300)  # the window still handles events meanwhile
    assert window.isVisible() and dialog.busy
    with qtbot.waitSignal(dialog.failed, timeout=20_000) as failed:
        pass
    text = failed.args[0]
    assert text.startswith("Search on hung failed: ") and f"127.0.0.1:{silent_port}" in text
    assert "no answer within 1 s" in text and "\n" not in text
    assert dialog.problem.isVisible() and dialog.problem.text() == text
    qtbot.waitUntil(lambda: not dialog.busy)
    assert dialog.search_button.isEnabled() and dialog.table.rowCount() == 0
    assert not dialog.retrieve_button.isEnabled()  # nothing to retrieve


def test_a_refused_connection_names_the_server_and_a_bad_date_range_is_said_before_asking(qtbot):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    add_servers(PacsServer("down", host="127.0.0.1", port=port, called_ae="NOBODY", timeout_s=2.0))
    window = shown_window(qtbot)
    dialog = open_dialog(qtbot, window)
    click(qtbot, dialog.use_dates)
    dialog.date_from.setDate(QtCore.QDate(2024, 6, 1))
    dialog.date_to.setDate(QtCore.QDate(2024, 1, 1))
    click(qtbot, dialog.search_button)
    assert not dialog.busy and "ends before it starts" in dialog.problem.text()

    dialog.date_to.setDate(QtCore.QDate(2024, 12, 31))
    assert dialog.query().date == "20240601-20241231"
    with qtbot.waitSignal(dialog.failed, timeout=20_000) as failed:
        click(qtbot, dialog.search_button)
    assert failed.args[0].startswith(f"Search on down failed: server down (NOBODY@127.0.0.1:{port})")
    assert "cannot connect" in failed.args[0]


def test_a_folder_that_holds_other_files_is_not_offered_for_a_retrieval(qtbot, tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / "Documents").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    add_servers(PacsServer("web", url="http://127.0.0.1:9/dicom-web"))
    window = shown_window(qtbot)
    dialog = open_dialog(qtbot, window)
    assert dialog.folder.text() == str(home / "Documents" / "PACS study")
    assert "A new study is made" in dialog.note.text() and str(home / "Documents" / "PACS study.key.csv") in \
        dialog.note.text()
    cluttered = tmp_path / "holiday-photos"
    cluttered.mkdir()
    (cluttered / "beach.jpg").write_bytes(b"x")
    type_into(qtbot, dialog.folder, str(cluttered))
    assert "holds other files and is not a study" in dialog.note.text()
    type_into(qtbot, dialog.folder, "relative/folder")
    assert "full path" in dialog.note.text()


def test_send_is_off_without_a_study_and_a_study_without_dicom_key_is_refused(qtbot, tmp_path):
    add_servers(PacsServer("web", url="http://127.0.0.1:9/dicom-web"))
    window = opened_window(qtbot)
    send = menu_action(window, "Send results to PACS…")
    assert not send.isEnabled()
    with qtbot.waitSignal(window.studyOpened, timeout=20_000):
        window.open_path(make_study(tmp_path / "study").root)
    assert send.isEnabled()
    dialog = send_dialog(qtbot, window)
    refusal = dialog.findChild(QtWidgets.QLabel, "pacs-no-key")
    assert refusal is not None and refusal.isVisible() and dialog.refusal is refusal
    assert "no DICOM key" in refusal.text() and str(tmp_path / "study.key.dicom.json") in refusal.text()
    assert "Open from PACS" in refusal.text() and "Nothing was sent" in refusal.text()
    assert dialog.findChild(QtWidgets.QPushButton, "pacs-send") is None


# -- against a real Orthanc ------------------------------------------------------------------------------------------
@pytest.fixture()
def orthanc_servers(orthanc, monkeypatch) -> tuple[PacsServer, PacsServer]:
    monkeypatch.setenv(password_variable("web"), PASSWORD)
    web = PacsServer("web", url=orthanc.dicomweb_url, user=USER, timeout_s=20)
    dimse = PacsServer("dimse", host="127.0.0.1", port=orthanc.dicom_port, called_ae=AET, timeout_s=20)
    add_servers(web, dimse)
    return web, dimse


def annotate(study: Study, reader: str) -> None:
    """The reader's boxes on two of the reformatted slices (512 x 41 pixels)."""
    for slice_id, x in (("s005", 180.0), ("s006", 200.0)):
        image = study.read_image("case-0001", slice_id)
        study.save_annotation(SliceAnnotation(image.width, image.height, (
            Vertebra(Box(x, 2.0, x + 60.0, 38.0), frozenset({Disease.OVCF}), level="T12", source=reader),
            Vertebra(Box(x + 70.0, 2.5, x + 128.0, 37.5), frozenset(), level="T11", source=reader),
        ), reader=reader), "case-0001", slice_id, reader=reader)


def reports_in(orthanc, reader: str) -> int:
    """How many SR instances of ``reader``'s results Orthanc holds."""
    count = 0
    for series_id in orthanc.get_json("/series"):
        series = orthanc.get_json(f"/series/{series_id}")
        tags = series["MainDicomTags"]
        if tags.get("Modality") == "SR" and reader in tags.get("SeriesDescription", ""):
            count += len(series["Instances"])
    return count


@pytest.mark.slow
def test_search_then_retrieve_cancelled_then_resumed_opens_the_study(qtbot, tmp_path, orthanc, orthanc_servers,
                                                                     monkeypatch):
    ct = orthanc.studies["ct"]
    window = shown_window(qtbot)
    dialog = open_dialog(qtbot, window)
    assert [dialog.server.itemText(i) for i in range(dialog.server.count())] == [
        f"web — {orthanc.dicomweb_url}", f"dimse — {AET}@127.0.0.1:{orthanc.dicom_port}"]
    type_into(qtbot, dialog.patient, PATIENT_ID)
    with qtbot.waitSignal(dialog.searched, timeout=30_000) as searched:
        qtbot.keyClick(dialog.patient, QtCore.Qt.Key.Key_Return)
    assert searched.args == [1] and dialog.found.text() == "1 study found on web."
    cells = [dialog.table.item(0, column).text() for column in range(dialog.table.columnCount())]
    assert cells[2:] == [PATIENT_ID, ACCESSION, "CT", "1 / 20"] and dialog.chosen_study().study_uid == ct.study_uid

    steps: list[str] = []
    original_step = JobProgress.step

    def step_then_cancel(progress_row, progress):  # Cancel pressed a few instances into the download
        original_step(progress_row, progress)
        steps.append(progress_row.text.text())
        if progress.stage == "retrieve" and progress.step == 5:
            click(qtbot, progress_row.cancel)

    monkeypatch.setattr(JobProgress, "step", step_then_cancel)
    study_root = tmp_path / "studies" / "from-pacs"
    type_into(qtbot, dialog.folder, str(study_root))
    click(qtbot, dialog.retrieve_button)
    qtbot.waitUntil(lambda: not dialog.busy, timeout=30_000)
    assert "Retrieval cancelled" in dialog.problem.text() and dialog.isVisible()
    assert any(text.startswith("Downloading 5 of 20") for text in steps)
    assert not Study.is_study(study_root) or not Study.open(study_root).all_slices()  # no half a case

    monkeypatch.setattr(JobProgress, "step", original_step)
    told: list[str] = []
    window.pacs.message.connect(told.append)
    with qtbot.waitSignal(dialog.retrieved, timeout=60_000) as retrieved, \
            qtbot.waitSignal(window.studyOpened, timeout=60_000) as opened:
        click(qtbot, dialog.retrieve_button)
    report = retrieved.args[1]
    assert report.resumed >= 5 and report.resumed + report.downloaded == 20
    session = opened.args[0].session
    assert session.study.root == study_root and session.study.cases() == ["case-0001"]
    assert len(session.study.slices("case-0001")) == 11  # reformatted to sagittal slabs
    assert (tmp_path / "studies" / "from-pacs.key.dicom.json").is_file()
    qtbot.waitUntil(lambda: window.pacs.open_dialog is None)
    assert told and told[0].startswith(f"Retrieved {report.downloaded} instances into {study_root}: case-0001 (11")

    again = open_dialog(qtbot, window)  # the folder chosen is offered next time
    assert again.folder.text() == str(study_root) and "The study exists" in again.note.text()


@pytest.mark.slow
def test_send_stores_one_report_then_the_same_results_are_unchanged(qtbot, tmp_path, orthanc,
                                                                    orthanc_servers):
    from core.pacs.retrieve import retrieve_study
    from core.progress import run
    from core.study.importer import ImportOptions

    web, dimse = orthanc_servers
    study_root = tmp_path / "study"
    run(retrieve_study(web, orthanc.studies["ct"].study_uid, study_root, tmp_path / "study.key.csv",
                       options=ImportOptions(sagittal=True)))
    study = Study.open(study_root)
    annotate(study, "r1")
    window = opened_window(qtbot, study_root)
    dialog = send_dialog(qtbot, window)
    assert [button.text() for button in dialog.options][:2] == ["My reading (r1) · 2 slices",
                                                                "Consensus · none in this study yet"]
    assert dialog.source().name == "r1" and not dialog.options[1].isEnabled()
    dialog.server.setCurrentIndex(1)  # over DIMSE
    assert dialog.chosen_server() == dimse
    with qtbot.waitSignal(dialog.sent, timeout=60_000) as sent:
        click(qtbot, dialog.send_button)
    assert [(e.case, e.vertebrae, e.unchanged) for e in sent.args[0].sent] == [("case-0001", 4, False)]
    assert dialog.result.text().startswith("Stored 1 report (DICOM SR) on dimse: case-0001 (4 vertebrae)")
    qtbot.waitUntil(lambda: not dialog.busy)
    assert reports_in(orthanc, "r1") == 1

    dialog.server.setCurrentIndex(0)  # the same results again, over DICOMweb: found there, not stored twice
    with qtbot.waitSignal(dialog.sent, timeout=60_000) as again:
        click(qtbot, dialog.send_button)
    assert [e.unchanged for e in again.args[0].sent] == [True]
    assert dialog.result.text() == "case-0001: unchanged, already on web (not sent again)."
    assert reports_in(orthanc, "r1") == 1
    qtbot.waitUntil(lambda: not dialog.busy)

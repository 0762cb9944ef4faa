"""Importing in the app as a user does it (File menu, file dialogs answered): whose LabelMe annotations they are,
what blinding then hides (and says), the files that were not imported, and DICOM files without an extension."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6 import QtCore, QtGui, QtWidgets

from core.review.status import SliceStatus
from desktop.dialogs.import_reader_dialog import EACH_FILE, MINE, SEPARATE, ImportReaderDialog
from desktop.main_window import MainWindow
from desktop.review import study_opener


def _labelme(reader: str | None) -> dict:
    payload = {
        "version": "5.0.1", "flags": {},
        "shapes": [{"label": "OVCF", "points": [[20, 10], [70, 40]], "shape_type": "rectangle", "group_id": None,
                    "flags": {}}],
        "imagePath": "a.png", "imageData": None, "imageHeight": 120, "imageWidth": 160,
    }
    if reader is not None:
        payload["reader"] = reader
    return payload


def _labelme_folder(root: Path, reader: str | None = "bob") -> Path:
    root.mkdir(parents=True)
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (120, 160)).astype(np.uint8)).save(root / "a.png")
    (root / "a.json").write_text(json.dumps(_labelme(reader)))
    return root


def _action(window: MainWindow, starts: str) -> QtGui.QAction:
    return next(a for a in window.findChildren(QtGui.QAction) if a.text().startswith(starts))


def _choose_file(monkeypatch, path: Path, seen: list | None = None) -> None:
    def answer(parent, caption, folder, filters, *args, **kwargs):
        if seen is not None:
            seen.append(filters)
        return str(path), filters.split(";;")[0]

    monkeypatch.setattr(QtWidgets.QFileDialog, "getOpenFileName", staticmethod(answer))


def _choose_folder(monkeypatch, path: Path) -> None:
    monkeypatch.setattr(QtWidgets.QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(path)))


def _answer_reader_dialog(monkeypatch, qtbot, act) -> list[ImportReaderDialog]:
    """Answer the 'whose annotations' dialog by ``act(dialog)`` (clicks and typing), then Import (if enabled)."""
    shown: list[ImportReaderDialog] = []

    def exec_(dialog):
        shown.append(dialog)
        act(dialog)
        ok = dialog.buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok)
        if not ok.isEnabled():
            return QtWidgets.QDialog.DialogCode.Rejected
        qtbot.mouseClick(ok, QtCore.Qt.MouseButton.LeftButton)
        return dialog.result()

    monkeypatch.setattr(ImportReaderDialog, "exec", exec_)
    return shown


def _click(qtbot, button: QtWidgets.QAbstractButton) -> None:
    qtbot.mouseClick(button, QtCore.Qt.MouseButton.LeftButton, pos=QtCore.QPoint(6, button.height() // 2))


# -- whose annotations ------------------------------------------------------------------------------------------------
def test_labelme_annotations_are_the_readers_own_by_default(qtbot, window, tmp_path, monkeypatch):
    source = _labelme_folder(tmp_path / "export")
    _choose_file(monkeypatch, source / "a.png")
    seen: dict[str, object] = {}

    def look(dialog: ImportReaderDialog) -> None:  # and answer with the default
        seen.update(options=set(dialog.options), mine=dialog.options[MINE].isChecked(),
                    bob=dialog.options["named:bob"].text(), note=dialog.note.text())

    _answer_reader_dialog(monkeypatch, qtbot, look)
    with qtbot.waitSignal(window.studyOpened, timeout=60_000) as opened:
        _action(window, "Open &images").trigger()
    assert seen["options"] == {MINE, "named:bob", SEPARATE} and seen["mine"]
    assert "'bob': the reader named in 1 file" in seen["bob"] and "They will be yours" in seen["note"]
    study = opened.args[0].session.study
    assert study.reader_path("r1", "case-0001", "s001").is_file()
    assert not (study.root / "readers" / "bob").exists()
    assert window.case_list.summary(("case-0001", "s001")).status is not SliceStatus.UNREAD
    assert len(window.viewer.overlay.mine_items()) == 1  # the imported box, shown as the reader's own
    assert not window.case_list.hidden_note.isVisible()


def test_a_separate_reader_is_checked_and_blinding_says_what_it_hides(qtbot, window, tmp_path, monkeypatch):
    source = _labelme_folder(tmp_path / "export", reader=None)
    _choose_folder(monkeypatch, source)
    told: dict[str, object] = {}

    def act(dialog: ImportReaderDialog) -> None:
        assert EACH_FILE not in dialog.options  # the files name no reader: nothing to take "as each file says"
        dialog.separate_name.clear()
        qtbot.keyClicks(dialog.separate_name, "not a name")
        told["problem"] = dialog.problem.text()
        told["ok"] = dialog.buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok).isEnabled()
        told["note while wrong"] = dialog.note.text()
        dialog.separate_name.clear()
        qtbot.keyClicks(dialog.separate_name, "imported")
        told["note"] = dialog.note.text()

    _answer_reader_dialog(monkeypatch, qtbot, act)
    with qtbot.waitSignal(window.studyOpened, timeout=60_000) as opened:
        _action(window, "Import a &folder").trigger()
    assert "not allowed" in told["problem"] and told["ok"] is False and told["note while wrong"] == ""
    assert "reader 'imported'" in told["note"] and "mark the case done" in told["note"]
    study = opened.args[0].session.study
    assert study.reader_path("imported", "case-0001", "s001").is_file()
    assert window.case_list.summary(("case-0001", "s001")).status is SliceStatus.UNREAD  # hidden by blinding...
    note = window.case_list.hidden_note
    assert note.isVisible()  # ... and said so
    assert "1 slice annotated by 'imported'" in note.text() and "mark the case done" in note.text()
    case_row = window.case_list.tree.topLevelItem(0)
    assert case_row.text(2) == "hidden: 'imported' (1)"
    assert "Annotated by 'imported'" in case_row.child(0).toolTip(1)
    window.controller.mark_case_done()  # "no annotation of yours": answered Yes
    qtbot.waitUntil(lambda: not note.isVisible(), timeout=5_000)
    assert case_row.text(2) == ""


def test_each_files_own_reader_is_offered_when_the_files_name_several(qtbot, window, tmp_path, monkeypatch):
    source = _labelme_folder(tmp_path / "export", reader="bob")
    Image.fromarray(np.zeros((120, 160), np.uint8)).save(source / "b.png")
    (source / "b.json").write_text(json.dumps(_labelme("carol")))
    _choose_folder(monkeypatch, source)
    _answer_reader_dialog(monkeypatch, qtbot, lambda dialog: _click(qtbot, dialog.options[EACH_FILE]))
    with qtbot.waitSignal(window.studyOpened, timeout=60_000) as opened:
        _action(window, "Import a &folder").trigger()
    readers = sorted(p.name for p in (opened.args[0].session.study.root / "readers").iterdir()
                     if any(p.rglob("*.json")))
    assert readers == ["bob", "carol"]


def test_cancelling_the_question_imports_nothing(qtbot, window, tmp_path, monkeypatch):
    source = _labelme_folder(tmp_path / "export")
    _choose_folder(monkeypatch, source)
    monkeypatch.setattr(ImportReaderDialog, "exec", lambda dialog: QtWidgets.QDialog.DialogCode.Rejected)
    with qtbot.waitSignal(window.openFailed, timeout=5_000) as failed:
        _action(window, "Import a &folder").trigger()
    assert "cancelled" in failed.args[0]
    assert window.opened is None and not window.opener.busy


def test_no_question_without_labelme(qtbot, window, tmp_path, monkeypatch):
    source = tmp_path / "pngs"
    source.mkdir()
    Image.fromarray(np.zeros((120, 160), np.uint8)).save(source / "a.png")
    monkeypatch.setattr(study_opener, "ask_import_reader",
                        lambda *a: pytest.fail("asked whose annotations without any LabelMe file"))
    with qtbot.waitSignal(window.studyOpened, timeout=60_000):
        window.open_path(source)


# -- what was not imported --------------------------------------------------------------------------------------------
def test_every_skipped_file_is_listed_with_its_reason(qtbot, window, tmp_path, monkeypatch):
    source = tmp_path / "mixed"
    source.mkdir()
    Image.fromarray(np.zeros((120, 160), np.uint8)).save(source / "good.png")
    (source / "broken.json").write_text('{"shapes": [')
    (source / "empty.dcm").write_bytes(b"")
    _choose_folder(monkeypatch, source)
    _answer_reader_dialog(monkeypatch, qtbot, lambda dialog: None)
    with qtbot.waitSignal(window.studyOpened, timeout=60_000) as opened:
        _action(window, "Import a &folder").trigger()
    assert len(opened.args[0].session.keys) == 1
    dialog = window.opener.report_dialog
    assert dialog is not None and dialog.isVisible() and not dialog.isModal()
    rows = {dialog.table.topLevelItem(i).text(1): (dialog.table.topLevelItem(i).text(0),
                                                    dialog.table.topLevelItem(i).text(2))
            for i in range(dialog.table.topLevelItemCount())}
    assert rows["broken.json"][0] == "skipped" and "not valid JSON" in rows["broken.json"][1]
    assert rows["empty.dcm"][0] == "skipped" and "empty file (0 bytes)" in rows["empty.dcm"][1]
    dialog.copy_list()
    copied = QtWidgets.QApplication.clipboard().text()
    assert f"skipped {source / 'empty.dcm'}: empty file (0 bytes)" in copied
    assert "2 file(s) not imported" in window.statusBar().currentMessage()


def test_a_clean_import_shows_no_list(qtbot, window, tmp_path):
    source = tmp_path / "pngs"
    source.mkdir()
    Image.fromarray(np.zeros((120, 160), np.uint8)).save(source / "a.png")
    with qtbot.waitSignal(window.studyOpened, timeout=60_000):
        window.open_path(source)
    assert window.opener.report_dialog is None


# -- DICOM without an extension ---------------------------------------------------------------------------------------
def _pacs_export(root: Path, series: Path) -> Path:
    """A PACS export: nested folders, files named IM00001… without an extension."""
    folder = root / "DICOM" / "PA000000" / "ST000000" / "SE000000"
    folder.mkdir(parents=True)
    for number, path in enumerate(sorted(p for p in series.iterdir() if p.name.startswith("CT.")), start=1):
        shutil.copy(path, folder / f"IM{number:05d}")
    return folder


def _patterns(filters: str) -> list[str]:
    return re.search(r"\(([^()]*)\)$", filters.split(";;")[0]).group(1).split()


def test_open_images_shows_dicom_files_without_an_extension(qtbot, window, tmp_path, monkeypatch,
                                                            dicom_series_dir):
    folder = _pacs_export(tmp_path / "export", dicom_series_dir)
    seen: list[str] = []
    _choose_file(monkeypatch, folder / "IM00001", seen)
    with qtbot.waitSignal(window.studyOpened, timeout=60_000) as opened:
        _action(window, "Open &images").trigger()
    assert QtCore.QDir.match(_patterns(seen[0]), "IM00001")  # the dialog's first filter shows it
    assert len(opened.args[0].session.keys) == 11 and window.viewer.image.hu


def test_the_file_dialog_lists_an_extensionless_file(qtbot, window, tmp_path, dicom_series_dir):
    """The filters the app gives, in a real (Qt) file dialog: the PACS file is in its list."""
    from desktop.main_window import IMPORT_FILTERS

    folder = _pacs_export(tmp_path / "export", dicom_series_dir)
    dialog = QtWidgets.QFileDialog(window, "import", str(folder))
    dialog.setOption(QtWidgets.QFileDialog.Option.DontUseNativeDialog)
    dialog.setNameFilters(IMPORT_FILTERS.split(";;"))
    qtbot.addWidget(dialog)
    dialog.show()
    view = dialog.findChild(QtWidgets.QListView, "listView")

    def names() -> set[str]:
        model, root = view.model(), view.rootIndex()
        return {model.index(row, 0, root).data() for row in range(model.rowCount(root))}

    qtbot.waitUntil(lambda: "IM00001" in names(), timeout=10_000)
    dialog.selectNameFilter(IMPORT_FILTERS.split(";;")[1])
    qtbot.waitUntil(lambda: "IM00001" not in names(), timeout=10_000)  # the old filter hid it
    dialog.close()


def test_a_pacs_export_folder_imports_from_its_top(qtbot, window, tmp_path, monkeypatch, dicom_series_dir):
    export = tmp_path / "export"
    _pacs_export(export, dicom_series_dir)
    _choose_folder(monkeypatch, export)
    with qtbot.waitSignal(window.studyOpened, timeout=60_000) as opened:
        _action(window, "Import a &folder").trigger()
    assert len(opened.args[0].session.keys) == 11

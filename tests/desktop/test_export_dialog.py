"""File › Export for labelme as a user does it: whose annotations (my reading, the consensus, a model, each with its
slices), a folder that starts in Documents and is made when missing, and a clear word when it cannot be used."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from core.annotations.labelme_io import read_labelme
from core.annotations.model import Box, Disease, SliceAnnotation, Vertebra
from core.review.export import FINDINGS_FILE, ExportSource, SourceChoice
from core.review.preferences import Preferences
from core.study.layout import Study
from desktop.dialogs.export_dialog import ExportDialog, documents_folder
from tests.desktop.workspace_helpers import CASES, MODEL_ID, SLICES, H, W, make_study, shown_window

Ok = QtWidgets.QDialogButtonBox.StandardButton.Ok


@pytest.fixture()
def documents(tmp_path, monkeypatch) -> Path:
    """A fresh home with a Documents folder, as Qt finds it (no XDG user-dirs file)."""
    home = tmp_path / "home"
    (home / "Documents").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    return home / "Documents"


def consensus_study(root: Path) -> Study:
    """The workspace study (the fake model's predictions on case-0001), reader r1's reading of one slice and an
    agreed consensus on both slices of case-0001, its boxes written bottom first."""
    study = make_study(root)
    study.save_annotation(SliceAnnotation(W, H, (Vertebra(Box(20, 10, 70, 40), frozenset({Disease.SN})),)),
                          CASES[1], SLICES[0], reader="r1")
    agreed = (Vertebra(Box(20, 50, 70, 80), frozenset({Disease.OF}), level="L2"),
              Vertebra(Box(20, 10, 70, 40), frozenset({Disease.OVCF, Disease.KD}), level="L1"))
    for name in SLICES:
        study.save_annotation(SliceAnnotation(W, H, agreed), CASES[0], name)
    return study


def answer_with(monkeypatch, qtbot, act) -> list[ExportDialog]:
    """Answer the export dialog by ``act(dialog)`` (clicks and typing); ``act`` ends with Export or Cancel."""
    shown: list[ExportDialog] = []

    def exec_(dialog):
        shown.append(dialog)
        act(dialog)
        return dialog.result()

    monkeypatch.setattr(ExportDialog, "exec", exec_)
    return shown


def click(qtbot, button: QtWidgets.QAbstractButton) -> None:
    qtbot.mouseClick(button, QtCore.Qt.MouseButton.LeftButton, pos=QtCore.QPoint(8, button.height() // 2))


def type_folder(qtbot, dialog: ExportDialog, path: Path) -> None:
    dialog.folder.selectAll()
    qtbot.keyClick(dialog.folder, QtCore.Qt.Key.Key_Delete)
    qtbot.keyClicks(dialog.folder, str(path))


def export_action(window) -> QtGui.QAction:
    return next(a for a in window.findChildren(QtGui.QAction) if a.text().startswith("&Export for labelme"))


def test_the_consensus_goes_into_a_new_nested_folder_chosen_from_documents(qtbot, tmp_path, monkeypatch,
                                                                            documents, message_boxes):
    study = consensus_study(tmp_path / "study")
    window = shown_window(qtbot, study.root)
    out = documents / "exports" / "2026" / "agreed"
    browsed: list[str] = []
    monkeypatch.setattr(QtWidgets.QFileDialog, "getExistingDirectory",
                        staticmethod(lambda parent, caption, start, *a, **k: browsed.append(start) or ""))
    seen: dict[str, object] = {}

    def act(dialog: ExportDialog) -> None:
        seen["options"] = [(b.text(), b.isEnabled()) for b in dialog.options]
        seen["folder"] = dialog.folder.text()
        click(qtbot, dialog.browse)  # Browse… opens in Documents (the suggested folder is not there yet)
        consensus = dialog.findChild(QtWidgets.QRadioButton, "source-consensus-")
        click(qtbot, consensus)
        type_folder(qtbot, dialog, out)
        seen["note"] = dialog.note.text()
        click(qtbot, dialog.buttons.button(Ok))

    answer_with(monkeypatch, qtbot, act)
    with qtbot.waitSignal(window.exports.exported, timeout=20_000) as done:
        export_action(window).trigger()
    assert seen["options"] == [("My reading (r1) · 1 slice", True), ("Consensus · 2 slices", True),
                               (f"Model {MODEL_ID} (in use) · 2 slices", True)]
    assert seen["folder"] == str(documents / "study-labelme") and browsed == [str(documents)]
    assert "will be created" in seen["note"]
    assert (done.args[0].images, done.args[0].annotations) == (4, 2)
    exported = read_labelme(out / CASES[0] / f"{SLICES[1]}.json")
    assert [v.label for v in exported.vertebrae] == ["OF", "OVCF+KD"] and exported.image_path == "s002.png"
    assert not (out / CASES[1] / f"{SLICES[0]}.json").exists()  # r1's reading is not the consensus
    rows = list(csv.DictReader((out / FINDINGS_FILE).open()))
    assert [(r["slice"], r["level"], r["reader"]) for r in rows] == [
        ("s001", "L1", "consensus"), ("s001", "L2", "consensus"), ("s002", "L1", "consensus"),
        ("s002", "L2", "consensus")]
    assert "2 annotations of the consensus" in message_boxes[-1][2]
    assert Preferences.load().extra["export_folder"] == str(out)

    def look_and_cancel(dialog: ExportDialog) -> None:  # the next export starts where this one went
        seen["again"] = dialog.folder.text()
        seen["note again"] = dialog.note.text()
        dialog.reject()

    answer_with(monkeypatch, qtbot, look_and_cancel)
    export_action(window).trigger()
    assert seen["again"] == str(out) and "not empty" in seen["note again"]


def test_a_folder_that_is_a_file_is_named_and_the_dialog_stays(qtbot, tmp_path, documents):
    study = make_study(tmp_path / "study")
    choices = [SourceChoice(ExportSource.reader("r1"), 0), SourceChoice(ExportSource.consensus(), 0),
               SourceChoice(ExportSource.model(MODEL_ID), 2, active=True)]
    dialog = ExportDialog(study, choices, documents / "x")
    qtbot.addWidget(dialog)
    dialog.show()
    assert [b.isEnabled() for b in dialog.options] == [False, False, True]
    assert dialog.options[1].text() == "Consensus · none in this study yet" and dialog.source().kind == "model"
    blocker = tmp_path / "notes.txt"
    blocker.write_text("mine")
    type_folder(qtbot, dialog, blocker / "export")
    assert dialog.note.text() == "Part of this path is a file, not a folder."
    click(qtbot, dialog.buttons.button(Ok))
    assert dialog.isVisible() and dialog.request is None
    assert dialog.problem.isVisible() and str(blocker / "export") in dialog.problem.text()
    assert "cannot create" in dialog.problem.text() and blocker.read_text() == "mine"
    type_folder(qtbot, dialog, blocker)
    assert "a file, not a folder" in dialog.note.text() and not dialog.problem.isVisible()
    type_folder(qtbot, dialog, study.root / "out")
    click(qtbot, dialog.buttons.button(Ok))
    assert "outside the study" in dialog.problem.text() and not (study.root / "out").exists()
    type_folder(qtbot, dialog, tmp_path / "fine")
    click(qtbot, dialog.buttons.button(Ok))
    assert dialog.result() == QtWidgets.QDialog.DialogCode.Accepted and (tmp_path / "fine").is_dir()
    assert dialog.request.source == ExportSource.model(MODEL_ID) and dialog.request.folder == tmp_path / "fine"


def test_documents_falls_back_to_home(tmp_path, monkeypatch, documents):
    assert documents_folder() == documents
    documents.rmdir()
    assert documents_folder() == documents.parent

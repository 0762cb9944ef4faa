"""Never lose an edit: crash recovery, read-only studies, the same reader twice, bad files, export."""

from __future__ import annotations

import csv
import json

from PIL import Image
from PySide6 import QtCore, QtWidgets

from core.annotations.labelme_io import read_labelme
from core.annotations.model import Box, Disease, SliceAnnotation, Vertebra
from core.review.journal import RecoveryJournal
from core.review.preferences import Preferences, app_dirs
from desktop.main_window import MainWindow
from tests.desktop.workspace_helpers import CASES, SLICES, FakePipeline, drag, make_study, written

Key = QtCore.Qt.Key
FIRST = (CASES[0], SLICES[0])
No = QtWidgets.QMessageBox.StandardButton.No


def open_window(qtbot, root, reader="r1") -> MainWindow:
    win = MainWindow(reader=reader, pipeline_loader=lambda path: FakePipeline())
    qtbot.addWidget(win)
    win.resize(1200, 800)
    win.show()
    with qtbot.waitSignal(win.studyOpened, timeout=30_000):
        win.open_path(root)
    return win


def test_edits_lost_in_a_crash_are_recovered_on_restart(qtbot, tmp_path, message_boxes):
    study = make_study(tmp_path / "study")
    journal = RecoveryJournal.for_study(study.root, "r1")  # what the crashed app had written before saving
    lost = SliceAnnotation(160, 120, (Vertebra(Box(30, 30, 90, 70), frozenset({Disease.KD}), source="r1"),))
    journal.record(FIRST, lost)
    assert not study.reader_path("r1", *FIRST).exists()
    win = open_window(qtbot, study.root)
    assert any(kind == "question" and "Recover" in title for kind, title, _ in message_boxes)
    written()
    saved = read_labelme(study.reader_path("r1", *FIRST))
    assert saved.vertebrae[0].diseases == {Disease.KD} and saved.reader == "r1"
    assert len(win.viewer.overlay.mine_items()) == 1 and not journal.path.exists()


def test_declined_recovery_is_put_aside_not_deleted(qtbot, tmp_path, message_boxes):
    study = make_study(tmp_path / "study")
    journal = RecoveryJournal.for_study(study.root, "r1")
    journal.record(FIRST, SliceAnnotation(160, 120, (Vertebra(Box(30, 30, 90, 70)),)))
    message_boxes.answers.append(No)
    open_window(qtbot, study.root)
    assert not study.reader_path("r1", *FIRST).exists() and not journal.path.exists()
    kept = list(journal.path.parent.glob("*.discarded-*.json"))
    assert len(kept) == 1 and "case-0001/s001" in json.loads(kept[0].read_text())["entries"]


def test_a_crash_after_an_edit_loses_nothing(qtbot, tmp_path):
    """A real edit writes the journal before the save; if the save never happens, the next start recovers it."""
    study = make_study(tmp_path / "study")
    win = open_window(qtbot, study.root)
    session = win.controller.session
    session.read_only = True  # the save does not happen: as if the app died right after the journal write
    drag(qtbot, win.viewer, (90, 20), (140, 60))
    qtbot.keyClick(win.viewer, Key.Key_5)
    written()
    assert not study.reader_path("r1", *FIRST).exists()
    win2 = open_window(qtbot, study.root)
    assert read_labelme(study.reader_path("r1", *FIRST)).vertebrae[0].diseases == {Disease.PS}
    assert win2.controller.session.mine(FIRST).vertebrae[0].diseases == {Disease.PS}


def test_read_only_study_keeps_edits_in_memory_and_offers_export(qtbot, tmp_path, monkeypatch, message_boxes):
    study = make_study(tmp_path / "study")
    monkeypatch.setattr("core.review.session.study_writable", lambda study, reader: False)
    win = open_window(qtbot, study.root)
    assert win.viewer.notice_banner.isVisible() and "cannot be written" in win.viewer.notice_banner.text()
    assert "Export" in win.viewer.notice_banner.text() and win.lock is None
    drag(qtbot, win.viewer, (90, 20), (140, 60))
    qtbot.keyClick(win.viewer, Key.Key_2)
    assert not study.reader_path("r1", *FIRST).exists()
    assert win.controller.session.unsaved() == [FIRST]
    out = tmp_path / "exported"
    with qtbot.waitSignal(win.exports.exported, timeout=20_000) as done:
        win.exports.export_to(out)
    assert done.args[0].images == 4
    exported = read_labelme(out / CASES[0] / f"{SLICES[0]}.json")
    assert exported.vertebrae[0].diseases == {Disease.OF} and exported.image_path == "s001.png"
    rows = list(csv.DictReader((out / "findings.csv").open()))
    assert [(r["case"], r["slice"], r["label"]) for r in rows] == [(CASES[0], SLICES[0], "OF")]
    # closing asks first: the edits stay in the journal
    message_boxes.answers.append(No)
    win.close()
    assert win.isVisible() and any("could not be saved" in text for _, _, text in message_boxes)


def test_a_save_that_fails_later_is_reported_once(qtbot, tmp_path, monkeypatch, message_boxes):
    study = make_study(tmp_path / "study")
    win = open_window(qtbot, study.root)
    from core.errors import FileWriteError

    def disk_full(*args, **kwargs):
        raise FileWriteError("write failed, the previous file is unchanged: No space left on device", "x.json")

    monkeypatch.setattr(win.controller.session.study, "save_annotation", disk_full)
    drag(qtbot, win.viewer, (90, 20), (140, 60))
    qtbot.keyClick(win.viewer, Key.Key_1)
    written()
    warnings = [m for m in message_boxes if m[1] == "Edits not saved in the study"]
    assert len(warnings) == 1 and "No space left" in warnings[0][2]
    assert win.viewer.notice_banner.isVisible() and win.controller.session.unsaved() == [FIRST]


def test_the_same_reader_twice_is_warned_other_readers_are_not(qtbot, tmp_path, message_boxes):
    study = make_study(tmp_path / "study")
    first = open_window(qtbot, study.root)
    assert first.lock is not None and first.lock.path.is_file()
    open_window(qtbot, study.root, reader="r2")
    assert not any(title == "Study already open" for _, title, _ in message_boxes)
    second = open_window(qtbot, study.root)
    warned = [text for _, title, text in message_boxes if title == "Study already open"]
    assert len(warned) == 1 and "reader r1" in warned[0]
    assert second.lock is not None  # opened anyway, after the warning
    message_boxes.answers.append(No)
    third = MainWindow(reader="r1")
    qtbot.addWidget(third)
    with qtbot.waitSignal(third.openFailed, timeout=20_000):
        third.open_path(study.root)
    assert third.controller.session is None


def test_corrupt_image_and_json_mark_only_their_slice(qtbot, tmp_path):
    study = make_study(tmp_path / "study")
    (study.root / "images" / CASES[1] / f"{SLICES[0]}.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    bad = study.reader_path("r1", CASES[0], SLICES[1])
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_text('{"shapes": [')
    win = open_window(qtbot, study.root)
    qtbot.waitUntil(lambda: not win.controller.summaries.scanning, timeout=10_000)
    controller = win.controller
    controller.show((CASES[0], SLICES[1]))
    assert win.viewer.image is not None and len(win.viewer.overlay.other_items()) == 2
    assert "s002.json" in win.problem_label.text() and not controller.editable
    assert "s002.json" in win.case_list.summary((CASES[0], SLICES[1])).problem
    qtbot.keyClick(win.viewer, Key.Key_A)
    assert bad.read_text() == '{"shapes": ['  # never overwritten
    controller.show((CASES[1], SLICES[0]))
    assert win.viewer.image is None and "image not shown" in win.problem_label.text()
    controller.show((CASES[1], SLICES[1]))
    assert win.viewer.image is not None and win.problem_label.text() == "" and controller.editable
    drag(qtbot, win.viewer, (90, 20), (140, 60))
    written()
    assert study.reader_path("r1", CASES[1], SLICES[1]).is_file()


def test_a_folder_that_is_not_a_study_is_imported(qtbot, tmp_path, cutout_ct):
    win = open_window(qtbot, cutout_ct)
    session = win.controller.session
    assert session.study.root.parent == app_dirs().data / "studies" and len(session.keys) == 11
    assert win.viewer.image.hu and win.viewer.image.orientation == "sagittal"
    assert win.viewer.scale_bar.isVisible() and win.viewer.scale_bar.text().endswith(" mm")
    win.viewer.cursorMoved.emit((5, 6, float(win.viewer.image.pixels[6, 5])))
    assert win.cursor_label.text().endswith(" HU") and "mm" in win.cursor_label.text()


def test_a_folder_with_nothing_to_import_is_refused_and_nothing_changes(qtbot, tmp_path, message_boxes):
    study = make_study(tmp_path / "study")
    win = open_window(qtbot, study.root)
    empty = tmp_path / "notes"
    empty.mkdir()
    (empty / "readme.txt").write_text("hello")
    with qtbot.waitSignal(win.openFailed, timeout=20_000) as failed:
        win.open_path(empty)
    assert "nothing could be imported" in failed.args[0]
    assert message_boxes[-1][1] == "Could not open" and win.controller.session.study.root == study.root


def test_the_reader_is_asked_once_and_remembered(qtbot, tmp_path, monkeypatch):
    study = make_study(tmp_path / "study")
    asked = []

    def get_item(parent, title, label, items, current, editable):
        asked.append(label)
        return ("bad id!", True) if len(asked) == 1 else ("dr-lee", True)

    monkeypatch.setattr(QtWidgets.QInputDialog, "getItem", staticmethod(get_item))
    win = MainWindow(pipeline_loader=lambda path: FakePipeline())
    qtbot.addWidget(win)
    with qtbot.waitSignal(win.studyOpened, timeout=20_000):
        win.open_path(study.root)
    assert len(asked) == 2 and "not allowed" in asked[1]
    assert win.controller.session.reader == "dr-lee" and "reader dr-lee" in win.windowTitle()
    prefs = Preferences.load()
    assert prefs.reader == "dr-lee" and prefs.recent[0] == str(study.root.resolve())
    again = MainWindow()
    qtbot.addWidget(again)
    assert again.reader == "dr-lee" and len(asked) == 2


def test_findings_csv_and_open_in_labelme(qtbot, tmp_path, monkeypatch, message_boxes):
    study = make_study(tmp_path / "study")
    win = open_window(qtbot, study.root)
    qtbot.keyClick(win.viewer, Key.Key_A)
    path = tmp_path / "findings.csv"
    win.exports.findings_to(path)
    rows = list(csv.DictReader(path.open()))
    assert [r["label"] for r in rows] == ["OVCF", "NORMAL"] and rows[0]["p_OVCF"] == "0.93"
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    assert win.exports.open_in_labelme() is None and "not installed" in message_boxes[-1][2]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    args_file = tmp_path / "labelme-args.txt"
    program = bin_dir / "labelme"
    program.write_text(f"#!/bin/sh\necho \"$@\" > {args_file}\n")
    program.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    opened = win.exports.open_in_labelme()
    assert opened is not None and read_labelme(opened).vertebrae[0].label == "OVCF"
    assert Image.open(opened.with_suffix(".png")).size == (160, 120)
    qtbot.waitUntil(args_file.exists, timeout=5_000)
    assert args_file.read_text().strip() == str(opened)


def test_an_unreadable_study_file_is_reported(qtbot, tmp_path, message_boxes):
    root = tmp_path / "broken"
    root.mkdir()
    (root / "study.json").write_text("{")
    win = MainWindow(reader="r1")
    qtbot.addWidget(win)
    with qtbot.waitSignal(win.openFailed, timeout=20_000):
        win.open_path(root)
    assert "study.json" in message_boxes[-1][2] and win.controller.session is None
    assert (root / "study.json").read_text() == "{"

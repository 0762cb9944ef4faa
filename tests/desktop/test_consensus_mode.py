"""The consensus mode (consulted co-annotation) driven with keys and clicks: step through the disagreements only, take
a reader's version or the majority, edit a result, accept unanimous vertebrae, finalise; every decision is read
back from consensus/ with its provenance, and survives a restart of the window."""

from __future__ import annotations

import json

import pytest
from PySide6 import QtCore

from core.annotations.labelme_io import read_labelme
from core.consensus.session import GroupRef
from core.consensus.styles import reader_style
from desktop.main_window import MainWindow
from tests.desktop.consensus_helpers import READERS, make_consensus_study
from tests.desktop.workspace_helpers import CASES, SLICES, drag, make_study

Key = QtCore.Qt.Key
CTRL = QtCore.Qt.KeyboardModifier.ControlModifier
FIRST, SECOND = (CASES[0], SLICES[0]), (CASES[0], SLICES[1])
MAJORITY, CONFLICT, MISSING = GroupRef(*FIRST, 2), GroupRef(*FIRST, 3), GroupRef(*SECOND, 3)


@pytest.fixture()
def study(tmp_path):
    return make_consensus_study(tmp_path / "study")


def open_window(qtbot, study, reader="coord"):
    win = MainWindow(reader=reader)
    qtbot.addWidget(win)
    win.resize(1300, 850)
    win.show()
    with qtbot.waitSignal(win.studyOpened, timeout=20_000):
        win.open_path(study.root)
    qtbot.waitUntil(lambda: not win.controller.summaries.scanning, timeout=10_000)
    return win


def enter(qtbot, win, *, agreed_by=READERS):
    """Enter the consensus mode and tick who is at the meeting (nothing is ticked at the start)."""
    with qtbot.waitSignal(win.consensus.opened, timeout=20_000):
        qtbot.keyClick(win.viewer, Key.Key_C, CTRL | QtCore.Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: win.consensus.ref is not None or win.consensus.key is not None, timeout=5_000)
    checks = win.consensus_panel.overview.checks
    assert not any(box.isChecked() for box in checks.values())
    for reader in agreed_by:
        qtbot.mouseClick(checks[reader], QtCore.Qt.MouseButton.LeftButton,
                         pos=QtCore.QPoint(8, checks[reader].height() // 2))
    assert win.consensus_panel.overview.consulting() == list(agreed_by)
    return win.consensus


@pytest.fixture()
def window(qtbot, study):
    return open_window(qtbot, study)


def record(study, key=FIRST):
    """The consensus file: (annotation, its provenance record)."""
    path = study.consensus_path(*key)
    return read_labelme(path), json.loads(path.read_text())["consensus"]


def test_the_mode_steps_through_the_disagreements_only_with_the_readers_side_by_side(qtbot, window, study):
    consensus = enter(qtbot, window)
    assert window.consensus_mode_action.isChecked() and window.consensus_dock.isVisible()
    assert consensus.ref == MAJORITY and window.viewer.image is not None
    assert window.consensus_panel.versions.row_texts() == [["r1", "OF", "L2"], ["r2", "OVCF", "L2"],
                                                           ["r3", "OVCF", "L2"]]
    assert "box 21,44 – 71,72 px" in window.consensus_panel.versions.item(1, 1).toolTip()
    assert "Majority (r2, r3)" in window.consensus_panel.majority.text()
    current = [item for item in window.viewer.readers.items() if item.version.current]
    assert [item.chip.text for item in current] == ["r1 · OF", "r2 · OVCF", "r3 · OVCF"]
    pens = [item.line_pen() for item in current]
    for reader, pen in zip(READERS, pens, strict=True):
        style = reader_style(READERS, reader)
        assert pen.color().name().upper() == style.colour.upper()
        assert tuple(pen.dashPattern()) == pytest.approx(style.dash) if style.dash else pen.style() == \
            QtCore.Qt.PenStyle.SolidLine
    assert len({(p.color().name(), tuple(p.dashPattern())) for p in pens}) == 3  # three distinct looks
    assert len(window.viewer.readers.items()) == 9  # the slice's other vertebrae are drawn too, faint
    qtbot.keyClick(window.viewer, Key.Key_PageDown)
    assert consensus.ref == CONFLICT and "conflict" in window.consensus_panel.status.text()
    assert not window.consensus_panel.take_majority.isEnabled()
    qtbot.keyClick(window.viewer, Key.Key_N)
    assert consensus.ref == MISSING and window.viewer.image.pixels.mean() != 0
    qtbot.keyClick(window.viewer, Key.Key_PageDown)  # wraps round: only three disagreements, no unanimous one
    assert consensus.ref == MAJORITY
    qtbot.keyClick(window.viewer, Key.Key_P)
    assert consensus.ref == MISSING
    assert not study.consensus_path(*FIRST).exists()  # looking decides nothing


def test_take_the_majority_then_a_conflict_needs_an_explicit_choice(qtbot, window, study):
    consensus = enter(qtbot, window)
    qtbot.keyClick(window.viewer, Key.Key_M)
    annotation, provenance = record(study)
    assert [v.label for v in annotation.vertebrae] == ["OVCF"] and annotation.vertebrae[0].source == "consensus"
    [majority] = provenance["resolutions"]
    assert majority["method"] == "majority" and majority["group"] == 2 and majority["agreed_by"] == list(READERS)
    assert [v["reader"] for v in majority["versions"]] == list(READERS) and majority["at"]
    assert consensus.ref == CONFLICT  # on to the next open one
    qtbot.keyClick(window.viewer, Key.Key_M)  # a conflict has no majority: refused, nothing written
    assert "no majority" in window.statusBar().currentMessage()
    assert len(record(study)[1]["resolutions"]) == 1 and consensus.ref == CONFLICT
    window.consensus_panel.overview.checks["r3"].setChecked(False)  # r3 is not at the meeting
    qtbot.keyClick(window.viewer, Key.Key_2)  # row 2: r2's version
    resolutions = record(study)[1]["resolutions"]
    assert resolutions[1]["method"] == "reader" and resolutions[1]["reader"] == "r2"
    assert resolutions[1]["agreed_by"] == ["r1", "r2"] and resolutions[1]["result"]["diseases"] == ["OVCF"]
    assert consensus.session.summary()["decided"] == 2


def test_a_reader_version_by_clicking_and_clearing_a_decision(qtbot, window, study):
    consensus = enter(qtbot, window)
    qtbot.mouseClick(window.consensus_panel.versions.buttons["r1"], QtCore.Qt.MouseButton.LeftButton)
    assert record(study)[1]["resolutions"][0]["reader"] == "r1" and consensus.ref == CONFLICT
    qtbot.keyClick(window.viewer, Key.Key_PageUp)  # decided ones are left out of the steps…
    assert consensus.ref == MISSING
    window.consensus_panel.include_decided.setChecked(True)  # …unless asked for
    qtbot.keyClick(window.viewer, Key.Key_PageDown)  # round to the first one
    assert consensus.ref == MAJORITY and "r1's version" in window.consensus_panel.decision.text()
    qtbot.keyClick(window.viewer, Key.Key_Delete)
    annotation, provenance = record(study)
    assert provenance["resolutions"] == [] and annotation.vertebrae == ()
    assert provenance["history"][-1]["reason"] == "cleared" and provenance["history"][-1]["reader"] == "r1"


def test_an_edited_result_with_the_mouse_and_the_editor(qtbot, window, study):
    consensus = enter(qtbot, window)
    qtbot.keyClick(window.viewer, Key.Key_PageDown)
    assert consensus.ref == CONFLICT
    qtbot.keyClick(window.viewer, Key.Key_E)
    assert consensus.draft is not None and consensus.draft.diseases == frozenset()  # nothing preselected
    assert window.consensus_panel.editor.isVisible() and len(window.viewer.overlay.mine_items()) == 1
    assert not study.consensus_path(*FIRST).exists()  # starting an edit decides nothing
    window.consensus_panel.editor.checks["OF"].click()
    window.consensus_panel.editor.checks["KD"].click()
    drag(qtbot, window.viewer, (45, 94), (55, 96))  # move the box 10 px right
    qtbot.keyClick(window.viewer, Key.Key_Return)
    [edited] = record(study)[1]["resolutions"]
    assert edited["method"] == "edited" and edited["group"] == 3 and edited["result"]["diseases"] == ["OF", "KD"]
    assert edited["result"]["box"][0] == pytest.approx(30, abs=2)
    assert [v.label for v in record(study)[0].vertebrae] == ["OF+KD"] and consensus.draft is None


def test_accept_unanimous_in_bulk_finalise_and_reopen(qtbot, window, study, message_boxes):
    consensus = enter(qtbot, window)
    qtbot.keyClick(window.viewer, Key.Key_Return, CTRL)  # two disagreements open on this slice: refused
    assert "cannot be finalised" in window.statusBar().currentMessage()
    assert not study.consensus_path(*FIRST).exists()
    qtbot.keyClick(window.viewer, Key.Key_U)
    assert message_boxes[-1][0] == "question"
    assert consensus.session.summary()["open"] == 3  # unanimous ones are accepted, disagreements stay
    unanimous = record(study)[1]["resolutions"]
    assert [(r["group"], r["method"]) for r in unanimous] == [(1, "unanimous")]
    assert record(study, (CASES[1], SLICES[0]))[1]["resolutions"][1]["method"] == "unanimous"
    qtbot.keyClick(window.viewer, Key.Key_M)
    qtbot.keyClick(window.viewer, Key.Key_3)  # the conflict: r3's version (NORMAL)
    assert consensus.ref == MISSING
    consensus.show(MAJORITY)
    qtbot.keyClick(window.viewer, Key.Key_Return, CTRL)
    annotation, provenance = record(study)
    assert provenance["finalised"] and provenance["finalised_by"] == list(READERS) and annotation.reviewed
    assert [v.label for v in annotation.vertebrae] == ["OVCF", "OVCF", "NORMAL"]
    consensus.show(CONFLICT)  # a final slice is locked
    assert not window.consensus_panel.versions.buttons["r1"].isEnabled()
    assert not consensus.take_reader("r1") and "finalised" in window.statusBar().currentMessage()
    window.consensus_panel.reopen.click()
    assert not record(study)[1]["finalised"] and consensus.take_reader("r1")
    assert record(study)[1]["resolutions"][2]["reader"] == "r1"


def test_resolutions_are_kept_across_a_restart_of_the_window(qtbot, study):
    first = open_window(qtbot, study)
    enter(qtbot, first)
    qtbot.keyClick(first.viewer, Key.Key_M)
    first.close()
    again = open_window(qtbot, study)
    consensus = enter(qtbot, again)
    assert consensus.ref == CONFLICT  # the decided one is no longer open
    view = consensus.session.view(MAJORITY)
    assert view.resolution.method == "majority" and view.resolution.agreed_by == READERS
    consensus.show(MAJORITY)
    decision = again.consensus_panel.decision.text()
    assert "Decided:" in decision and "the majority" in decision
    assert "1 decided" in again.consensus_panel.overview.summary.text()
    assert again.case_list.summary(FIRST).consensus_progress == (1, 3)  # not "consensus" before it is final


def test_statistics_and_reading_progress_are_shown(qtbot, window, study):
    consensus = enter(qtbot, window)
    assert window.consensus_panel.overview.progress.item(0, 2).text() == "4 / 4"
    assert "r1" in window.consensus_panel.overview.note.text()  # nobody has marked a case done
    with qtbot.waitSignal(consensus.statisticsShown, timeout=30_000) as shown:
        window.consensus_panel.overview.statistics.click()
    stats = shown.args[0]
    assert stats["readers"] == list(READERS) and stats["vertebrae"]["conflict"] == 1
    text = consensus.statistics.dialog.text.toPlainText()
    for expected in ("Fleiss", "Cohen r1-r2", "Cohen r2-r3", "OVCF", "KD", "Mean IoU", "detection agreement",
                     "No slice has a consensus yet", "Reading progress"):
        assert expected in text
    kappa = stats["fleiss_kappa"]["OVCF"]
    assert f"{kappa:.2f}" in text


def test_review_keys_are_off_in_the_mode_and_back_after_it(qtbot, window, study):
    enter(qtbot, window)
    assert not window.undo_action.isEnabled()
    qtbot.keyClick(window.viewer, Key.Key_C, CTRL | QtCore.Qt.KeyboardModifier.ShiftModifier)
    assert not window.consensus.active and not window.consensus_dock.isVisible()
    assert window.viewer.readers.items() == [] and window.undo_action.isEnabled()
    qtbot.keyClick(window.viewer, Key.Key_PageDown)
    assert window.controller.key == SECOND
    assert not study.reader_path("coord", *FIRST).exists()


def test_the_mode_needs_two_readers_with_annotations(qtbot, tmp_path):
    study = make_study(tmp_path / "plain", model=False, predictions=False)
    win = open_window(qtbot, study)
    win.consensus.set_active(True)
    assert not win.consensus.active and not win.consensus_mode_action.isChecked()
    assert "at least two readers" in win.statusBar().currentMessage()


def test_blinding_in_the_review_mode_until_the_case_is_marked_done(qtbot, study):
    coordinator = open_window(qtbot, study)
    enter(qtbot, coordinator)
    qtbot.keyClick(coordinator.viewer, Key.Key_M)  # a consensus exists for case-0001/s001
    coordinator.close()
    win = open_window(qtbot, study, reader="r1")
    controller = win.controller
    assert not win.case_list.summary(FIRST).disagreement  # the case list gives nothing away
    controller.set_overlay("consensus")
    assert win.viewer.overlay.count == 0 and "Blinded" in win.statusBar().currentMessage()
    controller.set_overlay("readers")
    assert win.viewer.readers.items() == [] and len(win.viewer.overlay.mine_items()) == 3
    qtbot.keyClick(win.viewer, Key.Key_D, CTRL)
    assert study.root.joinpath("readers", "r1", "done.json").is_file()
    assert "marked done" in win.statusBar().currentMessage()
    readers = win.viewer.readers.items()
    assert sorted({item.version.reader for item in readers}) == ["r2", "r3"] and len(readers) == 6
    assert readers[0].chip.text.startswith("r2 · ")
    controller.set_overlay("consensus")
    assert len(win.viewer.overlay.other_items()) == 1
    assert win.case_list.summary(FIRST).disagreement

"""The consensus as a user sees it (issue 19): one count of open disagreements on every label, the "Readers disagree"
filter saying why blinding finds nothing, a fourth reader left out and nobody pre-ticked under "Agreed by", only the
slice's readers tickable, a slice's progress ("1/3 decided") in the case list until it is final, and the agreement
statistics with Krippendorff's alpha and intervals inside [-1, 1]."""

from __future__ import annotations

import json
import re

import pytest
from PySide6 import QtCore

from tests.desktop.consensus_helpers import make_consensus_study
from tests.desktop.test_consensus_mode import CTRL, FIRST, MAJORITY, Key, enter, open_window, record
from tests.desktop.workspace_helpers import CASES, SLICES

LEFT = QtCore.Qt.MouseButton.LeftButton
THIRD = (CASES[1], SLICES[0])  # every reader agrees here


@pytest.fixture()
def study(tmp_path):
    return make_consensus_study(tmp_path / "study")


def tick(qtbot, box) -> None:
    qtbot.mouseClick(box, LEFT, pos=QtCore.QPoint(8, box.height() // 2))


def status_cell(window, key) -> str:
    tree = window.case_list.tree
    for c in range(tree.topLevelItemCount()):
        case = tree.topLevelItem(c)
        for s in range(case.childCount()):
            if (case.text(0), case.child(s).text(0)) == key:
                return case.child(s).text(1)
    raise AssertionError(f"{key} is not in the case list")


def choose_slice(qtbot, window, key) -> None:
    """Click the slice in the case list."""
    tree = window.case_list.tree
    case = next(tree.topLevelItem(i) for i in range(tree.topLevelItemCount()) if tree.topLevelItem(i).text(0) == key[0])
    item = next(case.child(i) for i in range(case.childCount()) if case.child(i).text(0) == key[1])
    qtbot.mouseClick(tree.viewport(), LEFT, pos=tree.visualItemRect(item).center())


def test_readers_disagree_says_that_blinding_hides_them_until_the_case_is_marked_done(qtbot, study):
    window = open_window(qtbot, study, reader="r1")
    filters = window.case_list.filters
    assert not filters.blinding_note.isVisible()
    tick(qtbot, filters.disagreement)
    assert window.case_list.counts.text().startswith("0 of 4 slices shown")
    assert filters.blinding_note.isVisible()
    assert "Blinding hides the other readers in 2 cases until you mark each done (Ctrl+D)" in \
        filters.blinding_note.text()
    assert "Blinding hides" in filters.disagreement.toolTip()
    qtbot.keyClick(window.viewer, Key.Key_D, CTRL)  # mark case-0001 done: its disagreements show
    assert "marked done" in window.statusBar().currentMessage()
    assert window.case_list.counts.text().startswith("2 of 4 slices shown")
    assert window.case_list.visible_keys() == [FIRST, (CASES[0], SLICES[1])]
    assert "in 1 case until" in filters.blinding_note.text()
    tick(qtbot, filters.disagreement)
    assert not filters.blinding_note.isVisible()


def test_one_count_of_open_disagreements_on_every_label(qtbot, study):
    window = open_window(qtbot, study)
    consensus = enter(qtbot, window)
    panel, overview = window.consensus_panel, window.consensus_panel.overview
    assert "disagreement 1 of 3 open" in panel.position.text()
    assert "3 open disagreements</b> of 3" in overview.summary.text()
    qtbot.keyClick(window.viewer, Key.Key_M)  # the majority of vertebra 2
    assert "disagreement 1 of 2 open" in panel.position.text()  # now on the conflict
    assert "2 open disagreements</b> of 3: 1 decided" in overview.summary.text()
    assert len(consensus.session.disagreements()) == consensus.session.summary()["open"] == 2
    # The case list's filter finds the slices that hold them (the coordinator has marked case-0001 done).
    window.consensus.leave()
    qtbot.keyClick(window.viewer, Key.Key_D, CTRL)
    tick(qtbot, window.case_list.filters.disagreement)
    assert window.case_list.visible_keys() == [FIRST, (CASES[0], SLICES[1])]


def test_a_fourth_reader_is_left_out_and_nobody_is_ticked_before_someone_ticks(qtbot, study):
    for key in (FIRST, THIRD):  # "me" tries two slices, calling every vertebra OVCF
        mine = study.load_annotation(*key, reader="r1")
        study.save_annotation(mine.with_changes(vertebrae=tuple(v.with_changes(diseases=frozenset({"OVCF"}))
                                                                 for v in mine.vertebrae)), *key, reader="me")
    window = open_window(qtbot, study, reader="me")
    consensus = enter(qtbot, window, agreed_by=())
    overview = window.consensus_panel.overview
    assert list(overview.checks) == ["r1", "r2", "r3"]
    assert "Left out of the consensus: me (2 slices read; not one of the study's readers" in overview.note.text()
    assert consensus.ref == MAJORITY and "of 3 open" in window.consensus_panel.position.text()
    qtbot.keyClick(window.viewer, Key.Key_M)  # nobody ticked: refused, nothing written
    assert "Tick who is agreeing" in window.statusBar().currentMessage()
    assert not study.consensus_path(*FIRST).exists()
    tick(qtbot, overview.checks["r1"])
    tick(qtbot, overview.checks["r2"])
    qtbot.keyClick(window.viewer, Key.Key_M)
    [majority] = record(study)[1]["resolutions"]
    assert majority["agreed_by"] == ["r1", "r2"]  # what was ticked
    annotation, _ = record(study)
    assert annotation.vertebrae[0].extra["consensus"]["agreed_by"] == ["r1", "r2"]


def test_only_the_readers_of_a_slice_can_agree_on_it(qtbot, study):
    study.reader_path("r3", *THIRD).unlink()  # r3 has not read this slice
    window = open_window(qtbot, study)
    consensus = enter(qtbot, window)
    checks = window.consensus_panel.overview.checks
    choose_slice(qtbot, window, THIRD)
    assert consensus.key == THIRD
    assert not checks["r3"].isEnabled() and not checks["r3"].isChecked()
    assert checks["r3"].toolTip() == "r3 did not read this slice"
    qtbot.keyClick(window.viewer, Key.Key_Return, CTRL)  # finalise (its unanimous vertebrae accepted first)
    provenance = json.loads(study.consensus_path(*THIRD).read_text())["consensus"]
    assert provenance["finalised"] and provenance["finalised_by"] == ["r1", "r2"]
    assert {tuple(r["agreed_by"]) for r in provenance["resolutions"]} == {("r1", "r2")}
    choose_slice(qtbot, window, FIRST)  # r3 read this one: their tick is back
    assert checks["r3"].isEnabled() and checks["r3"].isChecked()
    qtbot.keyClick(window.viewer, Key.Key_M)
    assert record(study)[1]["resolutions"][0]["agreed_by"] == ["r1", "r2", "r3"]


def test_a_slice_shows_its_progress_in_the_case_list_until_it_is_final(qtbot, study):
    window = open_window(qtbot, study)
    enter(qtbot, window)
    assert status_cell(window, FIRST) == "unread"
    qtbot.keyClick(window.viewer, Key.Key_M)  # 1 of the slice's 3 vertebrae decided
    assert status_cell(window, FIRST) == "1/3 decided"
    assert window.case_list.summary(FIRST).status.value != "consensus"
    qtbot.keyClick(window.viewer, Key.Key_3)  # the conflict: r3's version
    assert status_cell(window, FIRST) == "2/3 decided"
    choose_slice(qtbot, window, FIRST)  # the mode had moved on to the next open disagreement
    assert "2/3 decided (0 of 2 disagreements open) · not final" in window.consensus_panel.slice_state.text()
    qtbot.keyClick(window.viewer, Key.Key_Return, CTRL)  # accept the unanimous one and finalise
    assert status_cell(window, FIRST) == "consensus"


def test_the_statistics_show_krippendorffs_alpha_and_intervals_inside_their_range(qtbot, study):
    window = open_window(qtbot, study)
    consensus = enter(qtbot, window)
    with qtbot.waitSignal(consensus.statisticsShown, timeout=30_000) as shown:
        window.consensus_panel.overview.statistics.click()
    stats = shown.args[0]
    text = consensus.statistics.dialog.text.toPlainText()
    assert "Krippendorff's alpha (12)" in text and "Fleiss' kappa (11 vertebrae)" in text
    assert "3 open disagreements of 3" in text
    assert stats["krippendorff_alpha"]["OVCF"] is not None
    for low, high in re.findall(r"\[(-?\d+\.\d+), (-?\d+\.\d+)\]", text):
        assert -1 <= float(low) <= float(high) <= 1

"""Editing in the workspace with the mouse and keys: every edit is autosaved to the reader's own file."""

from __future__ import annotations

import pytest
from PySide6 import QtCore

from core.annotations.labelme_io import read_labelme
from core.annotations.model import Box, Disease
from core.review.status import SliceStatus
from tests.desktop.workspace_helpers import CASES, MODEL_ID, SLICES, click, drag, make_study, shown_window, written

Key = QtCore.Qt.Key
CTRL, SHIFT = QtCore.Qt.KeyboardModifier.ControlModifier, QtCore.Qt.KeyboardModifier.ShiftModifier
FIRST = (CASES[0], SLICES[0])


@pytest.fixture()
def study(tmp_path):
    return make_study(tmp_path / "study")


@pytest.fixture()
def window(qtbot, study):
    return shown_window(qtbot, study.root)


def saved(study, key=FIRST):
    written()
    return read_labelme(study.reader_path("r1", *key))


def test_open_shows_the_first_slice_with_the_models_boxes_and_the_demo_banner(qtbot, window, study):
    controller = window.controller
    assert controller.key == FIRST and window.viewer.image.pixels.shape == (120, 160)
    assert tuple(window.viewer.image_item.levels) == pytest.approx((0.0, window.viewer.image.pixels.max()), abs=1)
    assert len(window.viewer.overlay.other_items()) == 2 and window.viewer.overlay.mine_items() == []
    assert [i.chip.text for i in window.viewer.overlay.other_items()] == ["L1 · OVCF 0.93", "? L2 · NORMAL 0.52"]
    assert window.viewer.demo_banner.isVisible()
    assert "demo model, trained on synthetic phantoms, not for clinical use" in window.viewer.demo_banner.text()
    assert not window.viewer.notice_banner.isVisible()
    assert window.case_list.visible_keys() == [(c, s) for c in CASES for s in SLICES]
    assert window.case_list.summary(FIRST).status == SliceStatus.PRE_ANNOTATED
    assert "fake-v1" in window.model_panel.description.text() and window.model_panel.run_slice.isEnabled()
    assert not study.reader_path("r1", *FIRST).exists()  # looking is not editing


def test_draw_a_box_label_it_with_keys_and_it_is_saved(qtbot, window, study):
    view = window.viewer
    drag(qtbot, view, (90, 20), (140, 60))
    assert window.controller.selected == 0
    box = saved(study).vertebrae[0].box
    assert box.x1 == pytest.approx(90, abs=2) and box.y2 == pytest.approx(60, abs=2)
    qtbot.keyClick(view, Key.Key_1)
    qtbot.keyClick(view, Key.Key_4)
    assert saved(study).vertebrae[0].diseases == {Disease.OVCF, Disease.KD}
    assert window.inspector.checks["KD"].isChecked() and not window.inspector.checks["NORMAL"].isChecked()
    qtbot.keyClick(view, Key.Key_1)
    assert saved(study).vertebrae[0].diseases == {Disease.KD}
    qtbot.keyClick(view, Key.Key_0)
    vertebra = saved(study).vertebrae[0]
    assert vertebra.diseases == frozenset() and vertebra.label == "NORMAL" and vertebra.source == "r1"
    assert window.inspector.checks["NORMAL"].isChecked()
    assert window.case_list.summary(FIRST).status == SliceStatus.IN_REVIEW


def test_a_click_or_a_tiny_drag_draws_nothing(qtbot, window, study):
    click(qtbot, window.viewer, (120, 100))
    drag(qtbot, window.viewer, (120, 100), (121, 101))
    assert not study.reader_path("r1", *FIRST).exists()


def test_move_and_resize_a_box_with_the_mouse(qtbot, window, study):
    view = window.viewer
    drag(qtbot, view, (90, 20), (130, 60))
    before = saved(study).vertebrae[0].box
    drag(qtbot, view, (110, 40), (100, 50))  # grab the middle: move
    moved = saved(study).vertebrae[0].box
    assert moved.width == pytest.approx(before.width) and moved.x1 == pytest.approx(before.x1 - 10, abs=1.5)
    assert moved.y1 == pytest.approx(before.y1 + 10, abs=1.5)
    drag(qtbot, view, (moved.x2, moved.y2), (moved.x2 + 20, moved.y2 + 5))  # the bottom-right handle
    resized = saved(study).vertebrae[0].box
    assert resized.x1 == pytest.approx(moved.x1) and resized.y1 == pytest.approx(moved.y1)
    assert resized.x2 == pytest.approx(moved.x2 + 20, abs=1.5) and resized.y2 == pytest.approx(moved.y2 + 5, abs=1.5)
    assert len(saved(study).vertebrae) == 1


def test_undo_and_redo_with_keys_follow_the_saved_file(qtbot, window, study):
    view = window.viewer
    drag(qtbot, view, (90, 20), (140, 60))
    qtbot.keyClick(view, Key.Key_2)
    assert saved(study).vertebrae[0].diseases == {Disease.OF}
    qtbot.keyClick(view, Key.Key_Z, CTRL)
    assert saved(study).vertebrae[0].diseases == frozenset()
    qtbot.keyClick(view, Key.Key_Z, CTRL)
    assert saved(study).vertebrae == ()
    qtbot.keyClick(view, Key.Key_Z, CTRL | SHIFT)
    qtbot.keyClick(view, Key.Key_Z, CTRL | SHIFT)
    assert saved(study).vertebrae[0].diseases == {Disease.OF}
    assert len(window.viewer.overlay.mine_items()) == 1


def test_select_delete_and_levels(qtbot, window, study):
    view = window.viewer
    window.controller.session.add_box(FIRST, Box(90, 10, 140, 40))
    window.controller.session.add_box(FIRST, Box(90, 50, 140, 80))
    click(qtbot, view, (115, 65))
    assert window.controller.selected == 1
    qtbot.keyClick(view, Key.Key_BracketRight)  # no level yet: starts at L1
    assert saved(study).vertebrae[1].level == "L1"
    qtbot.keyClick(view, Key.Key_BracketRight)
    assert saved(study).vertebrae[1].level == "L2"
    window.inspector.level.setCurrentIndex(window.inspector.level.findData("T12"))
    window.inspector.level.activated.emit(window.inspector.level.currentIndex())
    assert saved(study).vertebrae[1].level == "T12"
    qtbot.keyClick(view, Key.Key_Tab)
    assert window.controller.selected == 0
    qtbot.keyClick(view, Key.Key_Delete)
    assert [v.box.y1 for v in saved(study).vertebrae] == [50]
    click(qtbot, view, (10, 110))  # empty image: nothing selected
    assert window.controller.selected is None
    qtbot.keyClick(view, Key.Key_3)  # no box selected: nothing changes, the status bar says why
    assert saved(study).vertebrae[0].diseases == frozenset() and "Select a box" in window.statusBar().currentMessage()


def test_checkboxes_toggle_diseases(qtbot, window, study):
    window.controller.session.add_box(FIRST, Box(90, 10, 140, 40))
    window.controller.select(0)
    window.inspector.checks["PS"].click()
    window.inspector.checks["SN"].click()
    assert saved(study).vertebrae[0].diseases == {Disease.PS, Disease.SN}
    window.inspector.checks["NORMAL"].click()
    assert saved(study).vertebrae[0].diseases == frozenset()


def test_accept_the_model_then_enter_marks_reviewed_and_moves_on(qtbot, window, study):
    view = window.viewer
    qtbot.keyClick(view, Key.Key_A)
    mine = saved(study)
    assert [v.box for v in mine.vertebrae] == [v.box for v in study.load_annotation(*FIRST, model=MODEL_ID).vertebrae]
    assert not mine.reviewed and len(window.viewer.overlay.mine_items()) == 2
    qtbot.keyClick(view, Key.Key_Return)
    assert saved(study).reviewed and window.controller.key == (CASES[0], SLICES[1])
    assert window.case_list.summary(FIRST).status == SliceStatus.REVIEWED
    # Enter on an untouched pre-annotated slice accepts and marks reviewed at once
    qtbot.keyClick(view, Key.Key_Enter)
    second = saved(study, (CASES[0], SLICES[1]))
    assert second.reviewed and len(second.vertebrae) == 2 and window.controller.key == (CASES[1], SLICES[0])
    # without a model result, A says so and changes nothing
    qtbot.keyClick(view, Key.Key_A)
    assert not study.reader_path("r1", CASES[1], SLICES[0]).exists()
    assert "run the model" in window.statusBar().currentMessage()


def test_overlay_modes(qtbot, window, study):
    window.controller.session.add_box(FIRST, Box(90, 10, 140, 40))
    overlay = window.viewer.overlay
    assert (len(overlay.mine_items()), len(overlay.other_items())) == (1, 2)
    qtbot.keyClick(window.viewer, Key.Key_M)
    assert window.controller.overlay_mode == "mine"
    assert (len(overlay.mine_items()), len(overlay.other_items())) == (1, 0)
    qtbot.keyClick(window.viewer, Key.Key_M)
    assert window.controller.overlay_mode == "model"
    assert overlay.mine_items() == [] and len(overlay.other_items()) == 2
    drag(qtbot, window.viewer, (90, 60), (140, 100))  # only the model shown: drawing is off
    assert len(saved(study).vertebrae) == 1
    qtbot.keyClick(window.viewer, Key.Key_M)
    assert window.controller.overlay_mode == "consensus" and overlay.count == 0
    assert window.model_panel.overlay_mode() == "consensus"


def test_paging_wheel_filters_and_search(qtbot, window, study):
    view = window.viewer
    qtbot.keyClick(view, Key.Key_PageDown)
    assert window.controller.key == (CASES[0], SLICES[1])
    qtbot.keyClick(view, Key.Key_PageUp)
    qtbot.keyClick(view, Key.Key_PageUp)
    assert window.controller.key == FIRST
    window.viewer.sliceStepped.emit(2)  # the wheel, two notches down
    assert window.controller.key == (CASES[1], SLICES[0])
    qtbot.waitUntil(lambda: not window.controller.summaries.scanning, timeout=10_000)
    filters = window.case_list.filters
    filters.disease.setCurrentIndex(filters.disease.findData("OVCF"))
    assert window.case_list.visible_keys() == [(CASES[0], s) for s in SLICES]
    filters.low_confidence.setChecked(True)
    assert len(window.case_list.visible_keys()) == 2
    filters.disease.setCurrentIndex(0)
    filters.low_confidence.setChecked(False)
    qtbot.keyClick(view, Key.Key_F, CTRL)
    assert filters.search.hasFocus()
    qtbot.keyClicks(filters.search, "0002")
    assert window.case_list.visible_keys() == [(CASES[1], s) for s in SLICES]
    window.controller.show(FIRST)
    qtbot.keyClick(view, Key.Key_PageDown)  # to the next visible slice, skipping the hidden ones
    assert window.controller.key == (CASES[1], SLICES[0])


def test_zoom_fit_scale_bar_cursor_and_window_level(qtbot, window):
    view = window.viewer
    before = view.view.viewRange()[0][1] - view.view.viewRange()[0][0]
    qtbot.keyClick(view, Key.Key_Equal)
    after = view.view.viewRange()[0][1] - view.view.viewRange()[0][0]
    assert after == pytest.approx(before * 0.8, rel=0.05)
    qtbot.keyClick(view, Key.Key_F)
    assert view.view.viewRange()[0][1] - view.view.viewRange()[0][0] == pytest.approx(before, rel=0.05)
    assert not view.scale_bar.isVisible()  # a PNG has no pixel spacing: no mm scale
    previous = window.current_window()
    drag(qtbot, view, (80, 60), (110, 40), button=QtCore.Qt.MouseButton.RightButton)
    changed = window.current_window()
    assert changed.width > previous.width and changed.center < previous.center
    assert tuple(view.image_item.levels) == pytest.approx((changed.lower, changed.upper))
    view.cursorMoved.emit((10, 20, float(view.image.pixels[20, 10])))
    assert window.cursor_label.text() == f"x 10  y 20   {view.image.pixels[20, 10]:.0f}"


def test_help_panel_lists_the_shortcuts(qtbot, window):
    text = window.help_panel.toPlainText()
    for expected in ("Ctrl+Z", "Ctrl+Shift+Z", "Toggle KD", "Accept the model", "PgDown", "Right-drag"):
        assert expected in text
    shown = lambda: window.help_panel.isVisible() and not window.help_panel.visibleRegion().isEmpty()  # noqa: E731
    assert not shown()  # a tab behind the window/level panel
    qtbot.keyClick(window.viewer, Key.Key_F1)
    assert shown()
    qtbot.keyClick(window.viewer, Key.Key_F1)
    assert not shown()


def test_arrow_keys_in_the_case_list_move_through_slices(qtbot, window):
    tree = window.case_list.tree
    tree.setFocus()
    qtbot.keyClick(tree, Key.Key_Down)
    assert window.controller.key == (CASES[0], SLICES[1])
    qtbot.keyClick(tree, Key.Key_Down)  # onto case-0002 itself: its first slice is shown and selected
    assert window.controller.key == (CASES[1], SLICES[0]) and tree.currentItem().text(0) == SLICES[0]
    qtbot.keyClick(tree, Key.Key_Down)
    assert window.controller.key == (CASES[1], SLICES[1])
    qtbot.keyClick(tree, Key.Key_Up)
    assert window.controller.key == (CASES[1], SLICES[0])

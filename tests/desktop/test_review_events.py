"""The review's finer events as a user meets them: selecting a box (click or Tab) redraws the selection alone, the
selection lives in the session, and a slow disk never holds the image up: the edit is written by the background
writer, and closing the window waits for it."""

from __future__ import annotations

import threading
import time

import pytest
from PySide6 import QtCore

from core.annotations.labelme_io import read_labelme
from tests.desktop.workspace_helpers import CASES, SLICES, drag, make_study, shown_window, written

FIRST = (CASES[0], SLICES[0])
Key = QtCore.Qt.Key


@pytest.fixture()
def study(tmp_path):
    return make_study(tmp_path / "study")


@pytest.fixture()
def window(qtbot, study):
    return shown_window(qtbot, study.root)


def test_tab_moves_the_selection_without_drawing_the_boxes_again(qtbot, window, monkeypatch):
    drawn = []
    real = window.viewer.show_boxes
    monkeypatch.setattr(window.viewer, "show_boxes", lambda *a, **k: (drawn.append(1), real(*a, **k)))
    session = window.controller.session
    qtbot.keyClick(window.viewer, Key.Key_Tab)
    assert session.selection is not None and session.selection.model  # the model's top box
    first = [item.selected for item in window.viewer.overlay.other_items()]
    qtbot.keyClick(window.viewer, Key.Key_Tab)
    second = [item.selected for item in window.viewer.overlay.other_items()]
    assert first == [True, False] and second == [False, True]
    assert window.controller.selected_model == 1 and session.current == FIRST
    assert drawn == []  # only the two boxes concerned changed
    assert window.inspector.heading.text().startswith("Box 2 of 2 from the top")


def test_a_slow_disk_does_not_hold_the_view_and_closing_waits_for_the_write(qtbot, window, study, monkeypatch):
    release = threading.Event()
    real = study.save_annotation
    session = window.controller.session

    def slow_disk(annotation, *args, **kwargs):
        release.wait(5)
        return real(annotation, *args, **kwargs)

    monkeypatch.setattr(session.study, "save_annotation", slow_disk)
    started = time.perf_counter()
    drag(qtbot, window.viewer, (90, 20), (140, 60))
    qtbot.keyClick(window.viewer, Key.Key_1)
    assert time.perf_counter() - started < 2.5  # well under the blocked write's 5 s
    assert session.saving() and session.unsaved() == [FIRST] and window.controller.selected == 0
    assert not study.reader_path("r1", *FIRST).exists()
    release.set()
    window.close()  # waits for the writer, then nothing is unsaved: no question asked
    assert not window.isVisible() and session.unsaved() == []
    assert [v.label for v in read_labelme(study.reader_path("r1", *FIRST)).vertebrae] == ["OVCF"]
    written()


def test_moving_a_box_draws_that_box_again_and_nothing_else(qtbot, window, monkeypatch):
    view = window.viewer
    drag(qtbot, view, (90, 20), (130, 60))  # a new box: the list of boxes changed, everything is drawn
    drag(qtbot, view, (92, 85), (128, 110))  # and a second one below it
    drawn, updated = [], []
    real_show, real_update = view.show_boxes, view.update_boxes
    monkeypatch.setattr(view, "show_boxes", lambda *a, **k: (drawn.append(1), real_show(*a, **k)))
    monkeypatch.setattr(view, "update_boxes", lambda *a, **k: (updated.append(tuple(a[0])), real_update(*a, **k)))
    drag(qtbot, view, (110, 40), (100, 50))  # move the first one
    assert drawn == [] and updated and set(updated) == {(0,)}
    item = view.overlay.mine_items()[0]
    box = window.controller.session.editor(FIRST).state.vertebrae[0].box
    assert item.rect().left() == pytest.approx(box.x1) and item.rect().top() == pytest.approx(box.y1)
    assert view.overlay.mine_items()[1].rect().top() == pytest.approx(85, abs=2)  # the other box stayed
    qtbot.keyClick(view, Key.Key_Delete)  # removing a box changes the list: all drawn again
    assert drawn

"""A slice where the model found no vertebrae, or far fewer than on the rest of its case, is never shown as plain
"pre-annotated": the case list names it, its filter finds it, and a notice over the image says so."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6 import QtCore

from core.annotations.model import Box, SliceAnnotation, Vertebra
from core.review.shortfall import DEMO_HINT
from core.review.status import SliceStatus
from desktop.main_window import MainWindow
from desktop.panels.filter_bar import SHORTFALL_FILTER
from desktop.panels.model_panel import OVERLAY_BOTH, OVERLAY_MINE
from tests.desktop.workspace_helpers import (
    CASES,
    MODEL_ID,
    SLICES,
    FakePipeline,
    H,
    W,
    drag,
    make_study,
    model_vertebrae,
)

Key = QtCore.Qt.Key
CTRL = QtCore.Qt.KeyboardModifier.ControlModifier
EMPTY = (CASES[0], SLICES[0])  # the model found nothing here
FOUND = (CASES[0], SLICES[1])  # two boxes, the same as ever
FEW = (CASES[1], "s004")  # two boxes where the case's other slices have six
NONE_TEXT = "The model found no vertebrae on this slice."


def six_boxes() -> tuple[Vertebra, ...]:
    return tuple(Vertebra(Box(20, 5 + 18 * i, 70, 20 + 18 * i), score=0.99) for i in range(6))


def predict(study, key, vertebrae) -> None:
    study.save_annotation(SliceAnnotation(W, H, vertebrae, model=MODEL_ID), *key, model=MODEL_ID)


@pytest.fixture()
def study(tmp_path):
    """case-0001: nothing found on s001, two boxes on s002; case-0002: six boxes on s001-s003, two on s004."""
    study = make_study(tmp_path / "study", predictions=False)
    folder = study.root / "images" / CASES[1]
    for name in ("s003", "s004"):
        Image.fromarray(np.full((H, W), 50, np.uint8)).save(folder / f"{name}.png")
    predict(study, EMPTY, ())
    predict(study, FOUND, model_vertebrae())
    for name in ("s001", "s002", "s003"):
        predict(study, (CASES[1], name), six_boxes())
    predict(study, FEW, model_vertebrae())
    return study


class EmptyPipeline(FakePipeline):
    """A model that runs and finds nothing (as the demo model does on most real CT slices)."""

    is_demo = False

    def diagnose_study(self, study, slices=None):
        report = yield from super().diagnose_study(study, slices)
        for key in slices:
            predict(study, key, ())
        return report


def open_window(qtbot, root, pipeline) -> MainWindow:
    win = MainWindow(reader="r1", pipeline_loader=lambda path: pipeline)
    qtbot.addWidget(win)
    win.resize(1200, 800)
    win.show()
    with qtbot.waitSignal(win.studyOpened, timeout=20_000):
        win.open_path(root)
    qtbot.waitUntil(lambda: win.runner.state == "ready" and not win.controller.summaries.scanning, timeout=10_000)
    return win


def status_text(win, key) -> str:
    return win.case_list._items[key].text(1)


def notice(win) -> str | None:
    return win.viewer.model_notice.text() if win.viewer.model_notice.isVisible() else None


def test_nothing_found_is_named_in_the_list_and_said_over_the_image_until_reviewed(qtbot, study):
    win = open_window(qtbot, study.root, FakePipeline())
    view = win.viewer
    assert win.controller.key == EMPTY
    assert win.case_list.summary(EMPTY).status == SliceStatus.MODEL_FOUND_NONE
    assert status_text(win, EMPTY) == "model found none" and status_text(win, FOUND) == "pre-annotated"
    assert NONE_TEXT in win.case_list._items[EMPTY].toolTip(1)
    assert view.overlay.other_items() == []
    assert notice(win) == f"⚠ {NONE_TEXT} {DEMO_HINT}"  # the study's model is a demo model
    qtbot.keyClick(view, Key.Key_PageDown)
    assert win.controller.key == FOUND and len(view.overlay.other_items()) == 2
    assert notice(win) is None
    qtbot.keyClick(view, Key.Key_PageUp)
    assert NONE_TEXT in notice(win)
    qtbot.keyClick(view, Key.Key_M)  # only my boxes: nothing of the model's to explain
    assert win.controller.overlay_mode == OVERLAY_MINE and notice(win) is None
    win.controller.set_overlay(OVERLAY_BOTH)
    assert NONE_TEXT in notice(win)
    qtbot.keyClick(view, Key.Key_Return)  # looked, agreed there is nothing to box: reviewed, next
    assert win.controller.key == FOUND and notice(win) is None
    qtbot.keyClick(view, Key.Key_PageUp)
    assert win.case_list.summary(EMPTY).status == SliceStatus.REVIEWED and notice(win) is None


def test_far_fewer_than_the_rest_of_the_case_and_the_filter_that_finds_both(qtbot, study):
    win = open_window(qtbot, study.root, FakePipeline())
    assert status_text(win, FEW) == "model found too few"
    assert [status_text(win, (CASES[1], s)) for s in ("s001", "s002", "s003")] == ["pre-annotated"] * 3
    filters = win.case_list.filters
    filters.status.setCurrentIndex(filters.status.findText(SHORTFALL_FILTER))
    assert win.case_list.visible_keys() == [EMPTY, FEW]
    win.case_list.tree.setCurrentItem(win.case_list._items[FEW])  # a click on the slice in the list
    assert win.controller.key == FEW and len(win.viewer.overlay.other_items()) == 2
    assert notice(win) == ("⚠ The model found only 2 vertebrae here, fewer than on the other slices of this case "
                           f"(typically 6). {DEMO_HINT}")
    filters.status.setCurrentIndex(0)
    win.case_list.tree.setCurrentItem(win.case_list._items[(CASES[1], "s003")])
    assert win.controller.key == (CASES[1], "s003") and notice(win) is None


def test_a_run_that_finds_nothing_says_so_and_drawing_boxes_keeps_the_notice_until_reviewed(qtbot, tmp_path):
    study = make_study(tmp_path / "study", predictions=False, demo=False)
    win = open_window(qtbot, study.root, EmptyPipeline())
    assert status_text(win, EMPTY) == "unread" and notice(win) is None
    with qtbot.waitSignal(win.runner.finished, timeout=10_000):
        qtbot.keyClick(win.viewer, Key.Key_R, CTRL)
    assert win.case_list.summary(EMPTY).status == SliceStatus.MODEL_FOUND_NONE
    assert notice(win) == f"⚠ {NONE_TEXT}"  # not a demo model: no word about phantoms
    drag(qtbot, win.viewer, (40, 20), (90, 50))  # the reader draws the vertebra the model missed
    assert win.case_list.summary(EMPTY).status == SliceStatus.IN_REVIEW and notice(win) == f"⚠ {NONE_TEXT}"
    qtbot.keyClick(win.viewer, Key.Key_Return)
    qtbot.keyClick(win.viewer, Key.Key_PageUp)
    assert win.controller.key == EMPTY and notice(win) is None
    assert win.case_list.summary(EMPTY).status == SliceStatus.REVIEWED

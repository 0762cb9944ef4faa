"""Editing the model's result as a new reader does it, with the mouse and keys: any box can be selected, an edit of a
model box takes the model's result in one undoable step, Tab goes down the spine, a level set on one box carries
along the spine, one label per result that never covers another, a still layout, and a low-confidence mark that
means something and goes once the slice is reviewed."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image
from PySide6 import QtCore

from core.annotations.labelme_io import read_labelme
from core.annotations.model import Box, Disease, SliceAnnotation, Vertebra
from core.study.layout import Study
from tests.desktop.workspace_helpers import MODEL_ID, click, drag, shown_window, written

Key = QtCore.Qt.Key
CTRL = QtCore.Qt.KeyboardModifier.ControlModifier
W, H = 220, 440
CASE = "case-0001"
KEYS = [(CASE, "s001"), (CASE, "s002")]
FIRST = KEYS[0]
#: The order the model wrote its boxes in (as a detector sorted by score would): not the order along the spine.
FILE_ORDER = (4, 0, 9, 2, 11, 6, 1, 8, 3, 10, 5, 7)
UNSURE = 5  # the sixth body from the top: OVCF 0.2, a close call against the model's OVCF threshold, 0.3
#: The thresholds the fake model called with: judged against 0.5, OVCF 0.2 would not be a close call.
THRESHOLDS = {"OVCF": 0.3, "OF": 0.5, "SN": 0.5, "KD": 0.5, "PS": 0.5}


def spine_box(i: int) -> Box:
    """The ``i``-th vertebral body from the top of a gently curved spine."""
    x = 90 + 14 * math.sin(i / 3)
    return Box(x, 12 + 35 * i, x + 56, 12 + 35 * i + 29)


def model_spine() -> tuple[Vertebra, ...]:
    boxes = []
    for i in FILE_ORDER:
        normal, ovcf = (0.5, 0.2) if i == UNSURE else (0.97, 0.0213)
        probabilities = {"OVCF": ovcf, "OF": 0.0102, "SN": 0.0004, "KD": 0.0017, "PS": 0.0009, "NORMAL": normal}
        boxes.append(Vertebra(spine_box(i), frozenset(), probabilities, 0.9934))
    return tuple(boxes)


def make_spine_study(root) -> Study:
    """One case of two 220x440 slices with the fake model's 12 boxes on each (levels unknown: no sacrum seen)."""
    study = Study.create(root)
    folder = study.root / "images" / CASE
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for key in KEYS:
        Image.fromarray(rng.integers(0, 80, (H, W)).astype(np.uint8)).save(folder / f"{key[1]}.png")
        study.save_annotation(SliceAnnotation(W, H, model_spine(), model=MODEL_ID, thresholds=THRESHOLDS), *key,
                              model=MODEL_ID)
    models = study.root / "models" / MODEL_ID
    models.mkdir(parents=True)
    (models / "manifest.json").write_text('{"kind": "model-set", "demo": true}')
    (study.root / "models" / "active").write_text(f'{{"id": "{MODEL_ID}"}}')
    return study


@pytest.fixture()
def study(tmp_path):
    return make_spine_study(tmp_path / "study")


@pytest.fixture()
def window(qtbot, study):
    return shown_window(qtbot, study.root, settled=lambda win: not win.controller.summaries.scanning)


def saved(study, key=FIRST) -> SliceAnnotation:
    written()
    return read_labelme(study.reader_path("r1", *key))


def centre(i: int) -> tuple[float, float]:
    return spine_box(i).centre


def model_index(i: int) -> int:
    """The index in the model's file of the ``i``-th body from the top."""
    return FILE_ORDER.index(i)


def test_a_model_box_is_selected_by_a_click_and_tab_goes_down_the_spine(qtbot, window):
    view, controller = window.viewer, window.controller
    click(qtbot, view, centre(3))
    assert controller.selected_model == model_index(3) and controller.selected is None
    assert window.inspector.heading.text().startswith("Box 4 of 12 from the top: NORMAL (the model's")
    assert window.inspector.checks["OVCF"].isEnabled()
    selected = [item for item in view.overlay.other_items() if item.selected]
    assert [item.index for item in selected] == [model_index(3)]
    click(qtbot, view, (10, 430))  # the empty image
    assert controller.selected_model is None
    tops = []
    for _ in range(13):
        qtbot.keyClick(view, Key.Key_Tab)
        tops.append(controller._model_shown[controller.selected_model].box.y1)
    assert tops == [spine_box(i).y1 for i in range(12)] + [spine_box(0).y1]  # top to bottom, then round again
    assert window.inspector.heading.text().startswith("Box 1 of 12 from the top")
    qtbot.keyClick(view, Key.Key_Tab, QtCore.Qt.KeyboardModifier.ShiftModifier)
    assert controller.selected_model == model_index(11)
    assert not window.controller.session.study.reader_path("r1", *FIRST).exists()  # looking is not editing


def test_a_disease_key_on_a_model_box_takes_the_models_result_in_one_undoable_step(qtbot, window, study):
    view, controller = window.viewer, window.controller
    before = controller.session.editor(FIRST).state
    click(qtbot, view, centre(6))
    qtbot.keyClick(view, Key.Key_1)
    mine = saved(study)
    assert [v.box for v in mine.vertebrae] == [v.box for v in model_spine()]  # the whole result, as A takes it
    changed = [i for i, v in enumerate(mine.vertebrae) if v.diseases]
    assert changed == [model_index(6)] and mine.vertebrae[model_index(6)].diseases == {Disease.OVCF}
    assert mine.vertebrae[model_index(6)].source == "r1" and mine.vertebrae[0].source == "model"
    assert controller.selected == model_index(6) and controller.selected_model is None  # the selection follows
    assert "Took the model's box" in window.statusBar().currentMessage()
    qtbot.keyClick(view, Key.Key_Z, CTRL)  # one step back: exactly as before
    assert controller.session.editor(FIRST).state == before and saved(study).vertebrae == ()
    qtbot.keyClick(view, Key.Key_Z, CTRL | QtCore.Qt.KeyboardModifier.ShiftModifier)
    assert saved(study).vertebrae[model_index(6)].diseases == {Disease.OVCF}


def test_del_on_a_model_box_takes_the_rest(qtbot, window, study):
    view = window.viewer
    click(qtbot, view, centre(11))
    qtbot.keyClick(view, Key.Key_Delete)
    assert [v.box for v in saved(study).vertebrae] == [spine_box(i) for i in FILE_ORDER if i != 11]
    qtbot.keyClick(view, Key.Key_Z, CTRL)
    assert saved(study).vertebrae == ()


def test_moving_a_model_box_beside_the_readers_own_adds_it_alone(qtbot, window, study):
    view, controller = window.viewer, window.controller
    drag(qtbot, view, (5, 5), (60, 30))  # the reader's own box first
    assert len(saved(study).vertebrae) == 1
    before = controller.session.editor(FIRST).state
    start = centre(2)
    drag(qtbot, view, start, (start[0] + 10, start[1] + 4))
    mine = saved(study).vertebrae
    assert len(mine) == 2 and mine[0].box == before.vertebrae[0].box
    assert mine[1].box.x1 == pytest.approx(spine_box(2).x1 + 10, abs=1.5)
    assert mine[1].box.y1 == pytest.approx(spine_box(2).y1 + 4, abs=1.5) and mine[1].source == "r1"
    assert controller.selected == 1
    # the model's own box stays where the model put it
    assert view.overlay.other_items()[model_index(2)].rect().top() == pytest.approx(spine_box(2).y1)
    qtbot.keyClick(view, Key.Key_Z, CTRL)
    assert controller.session.editor(FIRST).state == before and len(saved(study).vertebrae) == 1


def test_a_model_box_on_a_vertebra_the_reader_has_stands_for_the_readers_box(qtbot, window, study):
    view, controller = window.viewer, window.controller
    qtbot.keyClick(view, Key.Key_A)
    box = spine_box(3)
    drag(qtbot, view, box.centre, (box.centre[0] + 12, box.centre[1]))  # the reader's box, moved right a little
    assert saved(study).vertebrae[model_index(3)].box.x1 == pytest.approx(box.x1 + 12, abs=1.5)
    click(qtbot, view, (box.x1 + 4, box.centre[1]))  # the part of the model's dashed box left uncovered
    assert controller.selected == model_index(3) and controller.selected_model is None
    qtbot.keyClick(view, Key.Key_3)
    mine = saved(study).vertebrae
    assert len(mine) == 12 and mine[model_index(3)].diseases == {Disease.SN}  # no second box for the vertebra


def test_a_level_key_on_a_model_box_takes_the_result_and_the_column_follows(qtbot, window, study):
    view = window.viewer
    click(qtbot, view, centre(2))
    qtbot.keyClick(view, Key.Key_BracketRight)  # no level yet: L1, and the rest count from it
    levels = {v.box: v.level for v in saved(study).vertebrae}
    assert [levels[spine_box(i)] for i in range(12)] == ["T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1",
                                                        None, None, None, None]
    qtbot.keyClick(view, Key.Key_Z, CTRL)
    assert saved(study).vertebrae == ()


def test_setting_one_level_sets_the_column_in_one_undoable_step(qtbot, window, study):
    view, controller = window.viewer, window.controller
    qtbot.keyClick(view, Key.Key_A)
    assert all(v.level is None for v in saved(study).vertebrae)
    click(qtbot, view, centre(11))
    assert controller.selected == model_index(11)
    window.inspector.level.setCurrentIndex(window.inspector.level.findData("S1"))
    window.inspector.level.activated.emit(window.inspector.level.currentIndex())
    levels = {v.box: v.level for v in saved(study).vertebrae}
    expected = ["T6", "T7", "T8", "T9", "T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1"][1:]
    assert [levels[spine_box(i)] for i in range(12)] == expected
    first = [v.level for v in saved(study).vertebrae]
    qtbot.keyClick(view, Key.Key_BracketLeft)  # the bottom body up one: the whole column moves with it
    levels = {v.box: v.level for v in saved(study).vertebrae}
    assert [levels[spine_box(i)] for i in range(12)] == ["T6", *expected[:-1]]
    qtbot.keyClick(view, Key.Key_Z, CTRL)
    assert [v.level for v in saved(study).vertebrae] == first
    qtbot.keyClick(view, Key.Key_Z, CTRL)
    assert all(v.level is None for v in saved(study).vertebrae)


def _chips(view):
    return [item.chip for item in (*view.overlay.mine_items(), *view.overlay.other_items()) if item.chip.isVisible()]


def _on_screen(view, item, rect: QtCore.QRectF) -> QtCore.QRectF:
    """``rect`` of ``item`` in the view's viewport pixels (right for items that ignore the zoom, as chips do)."""
    return item.deviceTransform(view.graphics.viewportTransform()).mapRect(rect)


def _overlaps(view, chips) -> list[tuple[str, str]]:
    rects = [(chip.text, _on_screen(view, chip, chip.chip_rect())) for chip in chips]
    return [(a, b) for n, (a, ra) in enumerate(rects) for b, rb in rects[n + 1:] if ra.intersects(rb)]


def test_after_a_each_result_has_one_label_and_no_label_covers_another(qtbot, window, study):
    view = window.viewer
    assert len(_chips(view)) == 12 and not _overlaps(view, _chips(view))  # the model's, before A
    qtbot.keyClick(view, Key.Key_A)
    chips = _chips(view)
    assert len(chips) == 12 and all(not chip.right for chip in chips)  # the reader's, on the left, one per body
    for _ in range(6):  # zoomed out: the bodies are closer on screen than a label is tall
        qtbot.keyClick(view, Key.Key_Minus)
    qtbot.wait(20)
    step = view.image_to_viewport(*centre(1)).y() - view.image_to_viewport(*centre(0)).y()
    assert step < chips[0].chip_rect().height()
    assert not _overlaps(view, _chips(view))
    by_box = sorted(_chips(view), key=lambda chip: chip.pos().y())  # still in the order of the spine
    tops = [_on_screen(view, chip, chip.chip_rect()).top() for chip in by_box]
    assert tops == sorted(tops)
    qtbot.keyClick(view, Key.Key_F)
    click(qtbot, view, centre(4))
    qtbot.keyClick(view, Key.Key_2)  # the reader's result differs from the model's here: both labels
    chips = _chips(view)
    assert len(chips) == 13 and not _overlaps(view, chips)
    assert sorted(chip.text for chip in chips if chip.right) == ["NORMAL 0.97"]


def test_the_halo_of_an_unsure_box_stays_off_every_label(qtbot, window):
    view = window.viewer
    qtbot.keyClick(view, Key.Key_A)
    unsure = view.overlay.mine_items()[model_index(UNSURE)]
    assert unsure.low_confidence and unsure.chip.text.startswith("? ")
    boxes = [*view.overlay.mine_items(), *view.overlay.other_items()]
    for chip in _chips(view):
        assert all(chip.zValue() > item.zValue() for item in boxes)  # drawn over every box, halo and handle
    halo = _on_screen(view, unsure, unsure.rect()).adjusted(-4, -4, 4, 4)  # a dotted line 6 px wide on the outline
    assert not halo.intersects(_on_screen(view, unsure.chip, unsure.chip.chip_rect()))


def test_the_layout_stays_still_whatever_is_selected(qtbot, window):
    view, controller = window.viewer, window.controller
    controller.session.add_box(FIRST, Box(5, 5, 60, 30))
    qtbot.wait(20)
    where = view.geometry(), window.inspector.geometry()
    click(qtbot, view, centre(3))  # a model box: a long note and six probabilities
    qtbot.wait(20)
    assert "the model's" in window.inspector.heading.text()
    assert (view.geometry(), window.inspector.geometry()) == where
    click(qtbot, view, (30, 15))  # the reader's own box
    qtbot.wait(20)
    assert controller.selected == 0 and (view.geometry(), window.inspector.geometry()) == where
    click(qtbot, view, (200, 430))
    qtbot.wait(20)
    assert controller.selected is None and (view.geometry(), window.inspector.geometry()) == where


def test_the_low_confidence_mark_goes_once_the_slice_is_reviewed(qtbot, window, study):
    view, cases = window.viewer, window.case_list
    marked = [item.chip.text for item in view.overlay.other_items() if item.low_confidence]
    assert marked == ["? NORMAL 0.50"]
    assert cases.summary(FIRST).low_confidence and cases.summary(KEYS[1]).low_confidence
    cases.filters.low_confidence.setChecked(True)
    assert cases.visible_keys() == KEYS
    qtbot.keyClick(view, Key.Key_Return)  # look, agree, Enter: reviewed, on to the next slice
    assert window.controller.key == KEYS[1]
    assert not cases.summary(FIRST).low_confidence and cases.visible_keys() == [KEYS[1]]
    cases.filters.low_confidence.setChecked(False)
    window.controller.show(FIRST)
    items = [*view.overlay.mine_items(), *view.overlay.other_items()]
    assert len(view.overlay.mine_items()) == 12 and not any(item.low_confidence for item in items)
    assert not any(chip.text.startswith("?") for chip in _chips(view))
    qtbot.keyClick(view, Key.Key_Z, CTRL)  # not accepted nor reviewed any more: marked again
    assert cases.summary(FIRST).low_confidence
    assert [item.chip.text for item in view.overlay.other_items() if item.low_confidence] == ["? NORMAL 0.50"]


def test_unsure_boxes_are_judged_against_the_thresholds_the_model_called_with(qtbot, tmp_path):
    """The same result written without its thresholds (an older file) is judged against 0.5, where OVCF 0.2 is no
    close call: no box is marked, on the image or in the case list."""
    study = make_spine_study(tmp_path / "older")
    for key in KEYS:
        study.save_annotation(SliceAnnotation(W, H, model_spine(), model=MODEL_ID), *key, model=MODEL_ID)
    window = shown_window(qtbot, study.root, settled=lambda win: not win.controller.summaries.scanning)
    assert len(window.viewer.overlay.other_items()) == 12
    assert not any(item.low_confidence for item in window.viewer.overlay.other_items())
    assert not window.case_list.summary(FIRST).low_confidence


def test_the_selected_box_panel_says_which_call_was_close(qtbot, window):
    """Clicking the unsure box names its close call against the threshold the model called with; a sure box of the
    model's names none."""
    view, details = window.viewer, window.inspector.details
    click(qtbot, view, centre(UNSURE))
    qtbot.wait(20)
    assert "close call: OVCF 0.20 not called (from 0.30)" in details.text().splitlines()
    click(qtbot, view, centre(UNSURE + 2))
    qtbot.wait(20)
    assert "model: " in details.text() and "close call" not in details.text()


def test_a_disease_called_on_a_body_cut_by_the_image_edge_is_marked_unsure(qtbot, tmp_path):
    """The lowest body reaches the bottom of the image and is called OVCF far above its threshold: a cut body looks
    compressed, so the halo marks it, the case list marks the slice, and the panel says why."""
    study = make_spine_study(tmp_path / "cut")
    spine = list(model_spine())
    lowest = max(range(len(spine)), key=lambda i: spine[i].box.y2)
    box = spine[lowest].box
    spine[lowest] = spine[lowest].with_changes(box=Box(box.x1, H - 30, box.x2, H), diseases=frozenset({Disease.OVCF}),
                                               probabilities={**spine[lowest].probabilities, "OVCF": 0.95})
    study.save_annotation(SliceAnnotation(W, H, tuple(spine), model=MODEL_ID, thresholds=THRESHOLDS), *FIRST,
                          model=MODEL_ID)
    window = shown_window(qtbot, study.root, settled=lambda win: not win.controller.summaries.scanning)
    marked = [item.index for item in window.viewer.overlay.other_items() if item.low_confidence]
    assert sorted(marked) == sorted([lowest, FILE_ORDER.index(UNSURE)])  # the cut body and the close call
    assert window.case_list.summary(FIRST).low_confidence
    click(qtbot, window.viewer, (box.x1 + 20, H - 15))
    qtbot.wait(20)
    assert "(unsure: at the image's edge, may be cut off)" in window.inspector.details.text()

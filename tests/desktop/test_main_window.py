"""The first window: opening files in the background, window and level, slice paging, errors that keep state."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6 import QtCore

from core.annotations.model import Box, Disease, SliceAnnotation, Vertebra
from core.imaging.windowing import BONE, SOFT_TISSUE
from core.study.layout import Study
from desktop.main_window import MainWindow
from desktop.panels.window_panel import PRESET_MIN_MAX, PRESET_SOFT


@pytest.fixture()
def window(qtbot):
    win = MainWindow(reader="r1")
    qtbot.addWidget(win)
    win.show()
    return win


def open_and_wait(qtbot, win: MainWindow, path: Path):
    with qtbot.waitSignal(win.stackOpened, timeout=30_000) as blocker:
        win.open_path(path)
    return blocker.args[0]


def test_open_nifti_shows_the_spine_midline_with_bone_window(qtbot, window, cutout_ct):
    stack = open_and_wait(qtbot, window, cutout_ct)
    assert len(stack) == 73 and window.slice_list.count() == 73
    assert window.index == stack.start_index and window.slice_list.currentRow() == window.index
    image = window.viewer.image
    assert image is not None and image.orientation == "sagittal" and image.pixels.shape == (47, 73)
    assert tuple(window.viewer.image_item.levels) == (BONE.lower, BONE.upper)
    assert window.viewer.image_item.image.shape == (47, 73)
    assert "73 slices" in window.statusBar().currentMessage()


def test_window_presets_and_right_drag_change_the_levels(qtbot, window, cutout_ct):
    open_and_wait(qtbot, window, cutout_ct)
    panel = window.window_panel
    panel.preset.setCurrentIndex(panel.preset.findData(PRESET_SOFT))
    assert tuple(window.viewer.image_item.levels) == (SOFT_TISSUE.lower, SOFT_TISSUE.upper)
    panel.preset.setCurrentIndex(panel.preset.findData(PRESET_MIN_MAX))
    pixels = window.viewer.image.pixels
    assert tuple(window.viewer.image_item.levels) == pytest.approx((pixels.min(), pixels.max()))
    before = window.current_window()
    window.viewer.windowDragged.emit(40.0, -20.0)  # right-drag: wider, lower level
    after = window.current_window()
    assert after.width > before.width and after.center < before.center
    assert tuple(window.viewer.image_item.levels) == pytest.approx((after.lower, after.upper))


def test_page_keys_and_list_change_the_slice(qtbot, window, cutout_ct):
    open_and_wait(qtbot, window, cutout_ct)
    start = window.index
    first_pixels = window.viewer.image.pixels.copy()
    qtbot.keyClick(window, QtCore.Qt.Key.Key_PageDown)
    assert window.index == start + 1
    assert not np.array_equal(window.viewer.image.pixels, first_pixels)
    qtbot.keyClick(window, QtCore.Qt.Key.Key_PageUp)
    qtbot.keyClick(window, QtCore.Qt.Key.Key_PageUp)
    assert window.index == start - 1
    window.slice_list.setCurrentRow(0)
    assert window.index == 0
    window.step(-5)
    assert window.index == 0


def test_cursor_readout_shows_hu(qtbot, window, cutout_ct):
    open_and_wait(qtbot, window, cutout_ct)
    image = window.viewer.image
    window.viewer.cursorMoved.emit((10, 20, float(image.pixels[20, 10])))
    text = window.cursor_label.text()
    assert "x 10" in text and "y 20" in text and text.endswith(f"{image.pixels[20, 10]:.0f} HU")


def test_open_dicom_series_reformats_to_sagittal(qtbot, window, dicom_series_dir):
    stack = open_and_wait(qtbot, window, dicom_series_dir)
    assert len(stack) == 512
    assert window.viewer.image.orientation == "sagittal" and window.viewer.image.pixels.shape == (41, 512)


def test_failed_open_says_why_and_keeps_what_was_open(qtbot, window, cutout_ct, tmp_path, message_boxes):
    open_and_wait(qtbot, window, cutout_ct)
    shown_before = window.viewer.image
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with qtbot.waitSignal(window.openFailed, timeout=30_000) as blocker:
        window.open_path(bad)
    assert "broken.nii.gz" in blocker.args[0]
    assert message_boxes and message_boxes[-1][0] == "warning" and "broken.nii.gz" in message_boxes[-1][2]
    assert window.viewer.image is shown_before and window.slice_list.count() == 73


def test_study_shows_the_readers_boxes(qtbot, window, tmp_path):
    study = Study.create(tmp_path / "study")
    folder = study.root / "images" / "case-0001"
    folder.mkdir(parents=True)
    Image.fromarray(np.full((60, 90), 100, dtype=np.uint8)).save(folder / "s001.png")
    vertebrae = (Vertebra(Box(5, 5, 40, 25), frozenset({Disease.OVCF}), level="L1"), Vertebra(Box(5, 30, 40, 50)))
    study.save_annotation(SliceAnnotation(90, 60, vertebrae), "case-0001", "s001", reader="r1")
    open_and_wait(qtbot, window, study.root)
    assert window.viewer.overlay.count == 2
    assert window.slice_list.item(0).text() == "case-0001 / s001"


def test_corrupt_annotation_marks_only_that_slice(qtbot, window, tmp_path):
    study = Study.create(tmp_path / "study")
    folder = study.root / "images" / "case-0001"
    folder.mkdir(parents=True)
    for name in ("s001", "s002"):
        Image.fromarray(np.full((60, 90), 100, dtype=np.uint8)).save(folder / f"{name}.png")
    study.save_annotation(SliceAnnotation(90, 60, (Vertebra(Box(5, 5, 40, 25)),)), "case-0001", "s002", reader="r1")
    study.reader_path("r1", "case-0001", "s001").parent.mkdir(parents=True, exist_ok=True)
    study.reader_path("r1", "case-0001", "s001").write_text("{broken")
    open_and_wait(qtbot, window, study.root)
    assert window.index == 0 and window.viewer.image is not None and window.viewer.overlay.count == 0
    assert "annotation not shown" in window.slice_list.problem(0) and "not valid JSON" in window.slice_list.problem(0)
    assert "s001.json" in window.problem_label.text()
    window.step(1)
    assert window.viewer.overlay.count == 1 and window.problem_label.text() == ""
    assert window.slice_list.problem(1) == ""

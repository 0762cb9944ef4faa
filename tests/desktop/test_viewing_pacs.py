"""Viewing as on a PACS: smooth display of enlarged images, a preset box that always names the drawn window,
corner text, and a ruler and a region of interest kept out of the annotations. Driven on a copy of the demo study's
CT (HU, 0.55 mm pixels) as a reader would: keys, the window panel, drags on the image."""

from __future__ import annotations

import shutil

import numpy as np
import pydicom
import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from core.annotations.labelme_io import read_labelme
from core.imaging.image import SliceImage, Volume
from core.imaging.measure import distance_mm, roi_stats
from core.imaging.reformat import SagittalReformat
from core.imaging.windowing import Window
from core.resources import resources_dir
from desktop.panels.window_panel import (
    PRESET_BONE,
    PRESET_CUSTOM,
    PRESET_DICOM,
    PRESET_MIN_MAX,
    PRESET_SOFT,
    preset_window,
)
from desktop.viewer.corner_text import BOTTOM_RIGHT, TOP_LEFT, TOP_RIGHT
from desktop.viewer.slice_view import SliceView
from tests.desktop.workspace_helpers import drag, shown_window, written

FILE_WINDOW = (40, 300)  # case-0001's file says soft tissue; case-0002's says nothing


@pytest.fixture()
def demo(tmp_path):
    """Two demo cases of two slices; case-0001/s001 carries a 40/300 window in its file, case-0002 none."""
    bundled, root = resources_dir() / "demo", tmp_path / "demo"
    root.mkdir()
    shutil.copy(bundled / "study.json", root / "study.json")
    for case in ("case-0001", "case-0002"):
        (root / "images" / case).mkdir(parents=True)
        for name in ("s001", "s002"):
            for suffix in (".dcm", ".png"):
                shutil.copy(bundled / "images" / case / f"{name}{suffix}", root / "images" / case)
            path = root / "images" / case / f"{name}.dcm"
            ds = pydicom.dcmread(path)
            if case == "case-0001":
                ds.WindowCenter, ds.WindowWidth = FILE_WINDOW
            else:
                del ds.WindowCenter, ds.WindowWidth
            ds.save_as(path)
    return root


@pytest.fixture()
def window(qtbot, demo):
    """The main window with the demo copy open (it has no model: a manual reading)."""
    win = shown_window(qtbot)
    with qtbot.waitSignal(win.studyOpened, timeout=20_000):
        win.open_path(demo)
    return win


def drawn(win) -> tuple[float, float]:
    return tuple(float(v) for v in win.viewer.image_item.levels)


def assert_box_names_the_drawn_window(win):
    """The preset box's choice, worked out for the shown image, is what the image item draws."""
    panel = win.window_panel
    lower, upper = drawn(win)
    centre, width = (lower + upper) / 2, upper - lower
    key = panel.shown_preset()
    assert (panel.center.value(), panel.width.value()) == pytest.approx((centre, width))
    if key == PRESET_CUSTOM:
        assert panel.preset.currentText() == f"Custom ({centre:g}/{width:g})"
    else:
        preset = preset_window(key, win.viewer.image)
        assert (preset.center, preset.width) == pytest.approx((centre, width), abs=0.51)
    assert win.viewer.corner_text.text(TOP_RIGHT) == f"W {width:g}  L {centre:g}"


def send(viewport, kind, point: QtCore.QPoint, button, buttons) -> None:
    event = QtGui.QMouseEvent(kind, QtCore.QPointF(point), QtCore.QPointF(viewport.mapToGlobal(point)), button,
                              buttons, QtCore.Qt.KeyboardModifier.NoModifier)
    QtWidgets.QApplication.sendEvent(viewport, event)


def page(qtbot, win, key=QtCore.Qt.Key.Key_PageDown):
    with qtbot.waitSignal(win.controller.sliceShown, timeout=5_000):
        qtbot.keyClick(win.viewer, key)


def test_the_preset_box_and_the_drawn_window_agree_across_cases(qtbot, window):
    panel = window.window_panel
    assert window.controller.key == ("case-0001", "s001")
    assert panel.shown_preset() == PRESET_DICOM and drawn(window) == (-110.0, 190.0)
    assert panel.preset.currentText() == "From file (40/300)"
    assert_box_names_the_drawn_window(window)
    page(qtbot, window)
    page(qtbot, window)  # case-0002: no window in its file, so bone (it used to say Bone and draw 40/300)
    assert window.controller.key == ("case-0002", "s001")
    assert panel.shown_preset() == PRESET_BONE and drawn(window) == (-500.0, 1300.0)
    assert_box_names_the_drawn_window(window)
    panel.preset.setCurrentIndex(panel.preset.findData(PRESET_SOFT))
    page(qtbot, window, QtCore.Qt.Key.Key_PageUp)  # back to case-0001: the chosen soft tissue stays
    assert panel.shown_preset() == PRESET_SOFT and drawn(window) == (-160.0, 240.0)
    assert_box_names_the_drawn_window(window)
    panel.preset.setCurrentIndex(panel.preset.findData(PRESET_MIN_MAX))
    page(qtbot, window)  # min-max is worked out again for each slice
    pixels = window.viewer.image.pixels
    assert panel.shown_preset() == PRESET_MIN_MAX
    assert drawn(window) == pytest.approx((pixels.min(), pixels.max()), abs=1)
    assert_box_names_the_drawn_window(window)
    window.viewer.windowDragged.emit(30.0, 12.0)  # right-drag: a window of the reader's own
    custom = window.current_window()
    assert panel.shown_preset() == PRESET_CUSTOM
    assert_box_names_the_drawn_window(window)
    page(qtbot, window)  # a custom window stays from slice to slice and case to case
    assert panel.shown_preset() == PRESET_CUSTOM and drawn(window) == (custom.lower, custom.upper)
    assert_box_names_the_drawn_window(window)
    panel.center.setValue(400)
    panel.width.setValue(1800)  # typed in by hand: the box names the preset that draws it
    assert panel.shown_preset() == PRESET_BONE and drawn(window) == (-500.0, 1300.0)


def test_corner_text_follows_slice_window_and_zoom(qtbot, window):
    view, corners = window.viewer, window.viewer.corner_text
    assert corners.text(TOP_LEFT).startswith("case-0001 · s001")
    assert corners.text(TOP_RIGHT) == "W 300  L 40"
    zoom = view.zoom_factor()
    assert corners.text(BOTTOM_RIGHT) == f"Zoom {zoom * 100:.0f}%"
    qtbot.keyClick(view, QtCore.Qt.Key.Key_Equal)  # zoom in
    assert view.zoom_factor() == pytest.approx(zoom * 1.25, rel=0.01)
    assert corners.text(BOTTOM_RIGHT) == f"Zoom {zoom * 125:.0f}%"
    page(qtbot, window)
    assert corners.text(TOP_LEFT).startswith("case-0001 · s002")
    window.window_panel.preset.setCurrentIndex(window.window_panel.preset.findData(PRESET_SOFT))
    assert corners.text(TOP_RIGHT) == "W 400  L 40"
    graphics = view.graphics.rect()
    placed = [label.geometry() for label in corners.labels.values()]
    bar = view.scale_bar.geometry()
    assert all(graphics.contains(rect) for rect in placed)
    assert not any(rect.intersects(bar) or rect.intersects(other) for rect in placed for other in placed
                   if other is not rect)
    assert not any(rect.intersects(bar) for rect in placed)


def test_corner_text_names_the_case_and_the_slice_position(qtbot):
    view = SliceView()
    qtbot.addWidget(view)
    view.resize(500, 400)
    view.show()
    affine = np.diag([2.0, 1.0, 1.0, 1.0])
    affine[0, 3] = -30.0
    image = SagittalReformat(Volume(np.zeros((20, 16, 12), dtype=np.float32), affine, hu=True)).slice(5, 6.0)
    view.set_slice(image, Window(400, 1800), ids=("case-0007", "x005"))
    assert view.corner_text.text(TOP_LEFT) == "case-0007 · x005\nx -20.0 mm · 6.0 mm thick"
    view.clear()
    assert not any(view.corner_text.text(corner) for corner in (TOP_LEFT, TOP_RIGHT, BOTTOM_RIGHT))


def _grey_levels(view) -> int:
    """How many grey levels the middle of the drawn image shows."""
    shot = view.graphics.viewport().grab().toImage()
    middle = shot.copy(shot.width() // 3, shot.height() // 3, shot.width() // 3, shot.height() // 3)
    middle = middle.convertToFormat(middle.Format.Format_Grayscale8)
    pixels = np.frombuffer(middle.constBits(), np.uint8).reshape(middle.height(), middle.bytesPerLine())
    return len(np.unique(pixels[:, :middle.width()]))


def test_enlarged_images_are_drawn_smooth_unless_turned_off(qtbot):
    view = SliceView()
    qtbot.addWidget(view)
    view.resize(420, 420)
    view.show()
    checkers = (np.indices((12, 12)).sum(axis=0) % 2).astype(np.float32)
    view.set_slice(SliceImage(checkers), Window(0.5, 1.0), fit=True)
    qtbot.wait(20)
    assert view.smooth and view.zoom_factor() > 20
    assert _grey_levels(view) > 10 and view.image_item.smoothed  # bilinear: greys between black and white
    view.set_smooth(False)
    assert _grey_levels(view) == 2 and not view.image_item.smoothed  # nearest: blocks of black and white
    view.set_smooth(True)
    large = SliceImage((np.indices((1200, 1200)).sum(axis=0) % 2).astype(np.float32))
    view.set_slice(large, Window(0.5, 1.0), fit=True)
    qtbot.wait(20)
    view.graphics.viewport().grab()
    assert view.zoom_factor() < 1 and not view.image_item.smoothed  # reduced: nearest, as fast as before


def test_a_ruler_and_a_region_measure_hu_and_stay_out_of_the_annotations(qtbot, window, demo):
    view, controller = window.viewer, window.controller
    session, key = controller.session, controller.key
    image = view.image
    drag(qtbot, view, (300, 150), (380, 210))  # a box of the reader's own, drawn as usual
    assert len(controller._mine.vertebrae) == 1
    box = controller._mine.vertebrae[0].box
    drawn_boxes = []
    view.boxDrawn.connect(drawn_boxes.append)
    messages = []
    view.statusMessage.connect(messages.append)
    with qtbot.waitSignal(view.measured) as ruler:
        view.start_measure("ruler")
        drag(qtbot, view, (320, 160), (360, 200))  # across the box: the box neither moves nor is redrawn
    assert messages[0].startswith("Drag a line to measure a distance") and messages[1] == f"Measured: {ruler.args[0]}"
    item = view.measure_tools.items()[0]
    start, end = (item.start.x(), item.start.y()), (item.end.x(), item.end.y())
    assert ruler.args[0] == f"{distance_mm(start, end, image.spacing_mm):.1f} mm"
    assert distance_mm(start, end, image.spacing_mm) == pytest.approx(np.hypot(40, 40) * 0.55, rel=0.05)
    with qtbot.waitSignal(view.measured) as region:
        view.start_measure("roi")
        drag(qtbot, view, (200, 120), (260, 170))
    roi = view.measure_tools.items()[1]
    rect = roi.rect()
    stats = roi_stats(image, (rect.left(), rect.top(), rect.right(), rect.bottom()), "ellipse")
    assert region.args[0] == ", ".join(stats.lines()) and " HU" in region.args[0] and "mm²" in region.args[0]
    assert stats.count > 1000  # about π·30·25 pixels
    assert drawn_boxes == [] and view.measure_tools.mode == ""
    assert [v.box for v in controller._mine.vertebrae] == [box]
    written()
    saved = read_labelme(session.study.reader_path("r1", *key))
    assert [v.box for v in saved.vertebrae] == [box]  # the file holds the box alone
    assert session.undo(key) and not session.undo(key)  # and the undo stack the box alone
    assert all(item.scene() is view.view.scene() for item in view.measure_tools.items())
    view.clear_measurements()  # Esc, or View › Clear measurements
    assert view.measure_tools.items() == [] and roi.scene() is None and item.scene() is None
    view.start_measure("rect")
    drag(qtbot, view, (100, 100), (140, 140))
    assert len(view.measure_tools.items()) == 1
    page(qtbot, window)  # another slice: the measurements were this slice's
    assert view.measure_tools.items() == []


def test_a_click_while_measuring_draws_nothing_and_the_tool_waits(qtbot, window):
    view = window.viewer
    view.start_measure("ruler")
    drag(qtbot, view, (300, 150), (300.2, 150.2))
    assert view.measure_tools.items() == [] and view.measure_tools.mode == "ruler"
    view.clear_measurements()
    assert view.measure_tools.mode == ""
    with pytest.raises(ValueError, match="no measuring tool"):
        view.start_measure("protractor")


def test_a_tool_started_with_the_mouse_resting_on_a_box_measures_and_leaves_the_box(qtbot, window):
    """The key is pressed while the pointer rests on a box (it took the hover), and the drag starts right there."""
    view, controller = window.viewer, window.controller
    drag(qtbot, view, (300, 150), (380, 210))
    box = controller._mine.vertebrae[0].box
    viewport, left, none = view.graphics.viewport(), QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.MouseButton.NoButton
    start, end = view.image_to_viewport(340, 180), view.image_to_viewport(370, 200)
    send(viewport, QtCore.QEvent.Type.MouseMove, start, none, none)  # resting on the box
    qtbot.wait(15)
    view.start_measure("ruler")
    send(viewport, QtCore.QEvent.Type.MouseButtonPress, start, left, left)
    for point in (start + QtCore.QPoint(8, 5), end):
        qtbot.wait(15)
        send(viewport, QtCore.QEvent.Type.MouseMove, point, none, left)
    send(viewport, QtCore.QEvent.Type.MouseButtonRelease, end, left, none)
    assert [v.box for v in controller._mine.vertebrae] == [box]
    assert len(view.measure_tools.items()) == 1

"""The slice viewer: a pyqtgraph image (row-major, explicit levels; smoothed where enlarged) with the vertebra boxes,
a scale bar in mm, corner text (case and slice, window and level, zoom), measuring tools (a ruler, a region of
interest), banners above it (demo model, read-only study, a model that found no or too few vertebrae), and a cursor
read-out of the pixel value (HU for CT)."""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from core.annotations.model import Box, Vertebra
from core.imaging.image import SliceImage
from core.imaging.windowing import Window
from core.review.confidence import ModelCall
from desktop.viewer.box_overlay import BoxOverlay
from desktop.viewer.corner_text import CornerText
from desktop.viewer.display_image import DisplayImageItem
from desktop.viewer.image_view_box import ImageViewBox
from desktop.viewer.measure_tools import MeasureTools
from desktop.viewer.reader_box_item import DrawnVersion
from desktop.viewer.reader_overlay import ReaderOverlay
from desktop.viewer.scale_bar import ScaleBar

_MEASURE_HINTS = {"ruler": "a line to measure a distance", "ellipse": "an ellipse to measure the values inside it",
                  "rectangle": "a rectangle to measure the values inside it"}


def _banner(colour: str) -> QtWidgets.QLabel:
    label = QtWidgets.QLabel()
    label.setWordWrap(True)
    label.setStyleSheet(f"background: {colour}; color: black; font-weight: bold; padding: 4px 8px;")
    label.hide()
    return label


class SliceView(QtWidgets.QWidget):
    """Shows one :class:`SliceImage` through a window, with the reader's boxes and the model's."""

    cursorMoved = QtCore.Signal(object)  # (column, row, value) or None when off the image
    windowDragged = QtCore.Signal(float, float)
    sliceStepped = QtCore.Signal(int)
    boxDrawn = QtCore.Signal(object)  # Box
    boxSelected = QtCore.Signal(int)  # one of mine
    boxEdited = QtCore.Signal(int, object)  # index, Box (on release)
    otherBoxSelected = QtCore.Signal(int)  # one of the model's (or the consensus's) boxes
    otherBoxEdited = QtCore.Signal(int, object)
    selectionCleared = QtCore.Signal()
    measured = QtCore.Signal(str)  # a finished measurement's figures
    statusMessage = QtCore.Signal(str)  # what a measuring tool waits for, then what it measured (the status bar)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.graphics = pg.GraphicsView(self)
        self.graphics.setBackground("k")
        self.view = ImageViewBox()
        self.graphics.setCentralItem(self.view)
        self.image_item = DisplayImageItem(axisOrder="row-major", autoDownsample=True)
        self.view.addItem(self.image_item)
        self.overlay = BoxOverlay(self.view, self._on_box_select, self._on_box_edit)
        self.readers = ReaderOverlay(self.view)
        self.scale_bar = ScaleBar(self.graphics)
        self.corner_text = CornerText(self.graphics)
        self.measure_tools = MeasureTools(self.view, self)
        self.measure_tools.measured.connect(self.measured)
        self.measure_tools.measured.connect(lambda text: self.statusMessage.emit(f"Measured: {text}"))
        self.measure_tools.modeChanged.connect(self._on_measure_mode)
        self.demo_banner = _banner("#E69F00")
        self.notice_banner = _banner("#D55E00")
        self.model_notice = _banner("#F0E442")
        self._setup_layout()
        self.view.windowDragged.connect(self.windowDragged)
        self.view.wheelStepped.connect(self.sliceStepped)
        self.view.boxDrawn.connect(self._on_box_drawn)
        self.view.emptyClicked.connect(self.selectionCleared)
        self.view.sigRangeChanged.connect(self._update_scale)
        self.graphics.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.view.sigRangeChangedManually.connect(self._on_manual_range)
        self._image: SliceImage | None = None
        self._window: Window | None = None
        self._fitted = False  # the view shows the whole image, as fit() left it: keep it so when resized

    def _setup_layout(self) -> None:
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.demo_banner)
        layout.addWidget(self.notice_banner)
        layout.addWidget(self.model_notice)
        layout.addWidget(self.graphics, 1)

    @property
    def image(self) -> SliceImage | None:
        return self._image

    # -- image ------------------------------------------------------------------------------------------------------
    def set_slice(self, image: SliceImage, window: Window, *, fit: bool = False,
                  ids: tuple[str, str] | None = None) -> None:
        """Show ``image`` through ``window``; keep the zoom unless ``fit`` or the size changed. ``ids`` (case,
        slice) head the corner text; another slice clears the measurements."""
        resized = self._image is None or self._image.pixels.shape != image.pixels.shape
        self.measure_tools.set_image(image)
        self._image = image
        self._window = window
        pixels = image.pixels if image.pixels.dtype == np.float32 else image.pixels.astype(np.float32)
        self.image_item.setImage(np.ascontiguousarray(pixels), levels=(window.lower, window.upper), autoLevels=False)
        row_mm, col_mm = image.spacing_mm or (1.0, 1.0)
        self.view.setAspectLocked(True, ratio=col_mm / row_mm if row_mm else 1.0)
        if fit or resized:
            self.fit()
        self.corner_text.show_slice(image, ids)
        self.corner_text.show_window(window)
        self._update_scale()

    def set_window(self, window: Window) -> None:
        self._window = window
        if self._image is not None:
            self.image_item.setLevels((window.lower, window.upper))
            self.corner_text.show_window(window)

    @property
    def smooth(self) -> bool:
        """Whether an image enlarged on screen is drawn with bilinear interpolation (a reduced one never is)."""
        return self.image_item.smooth

    def set_smooth(self, on: bool) -> None:
        self.image_item.set_smooth(bool(on))

    def zoom_factor(self) -> float | None:
        """Screen pixels per image pixel across the image (None when nothing is shown)."""
        view_width = self.view.viewRect().width()
        screen_width = self.view.sceneBoundingRect().width()
        if self._image is None or view_width <= 0 or screen_width <= 0:
            return None
        return screen_width / view_width

    def fit(self) -> None:
        if self._image is not None:
            self.view.setRange(
                QtCore.QRectF(0, 0, self._image.width, self._image.height), padding=0.02, disableAutoRange=True
            )
            self._fitted = True

    def _on_manual_range(self, *args) -> None:
        self._fitted = False

    def ensure_visible(self, box: Box, margin: float = 0.15) -> None:
        """Pan (keeping the zoom) so that ``box`` lies inside the view, with a margin of the view's size."""
        view = self.view.viewRect()
        inner = view.adjusted(view.width() * margin, view.height() * margin, -view.width() * margin,
                              -view.height() * margin)
        target = QtCore.QRectF(box.x1, box.y1, box.width, box.height)
        if inner.contains(target):
            return
        centre = target.center()
        self.view.translateBy(x=centre.x() - view.center().x(), y=centre.y() - view.center().y())
        self._fitted = False

    def zoom(self, factor: float) -> None:
        """Zoom in (factor > 1) or out around the centre of the view."""
        self.view.scaleBy((1 / factor, 1 / factor))
        self._fitted = False

    def clear(self) -> None:
        self.measure_tools.set_image(None)
        self._image = None
        self.image_item.clear()
        self.overlay.clear()
        self.readers.clear()
        self.scale_bar.measure(None)
        self.corner_text.clear()

    # -- measuring --------------------------------------------------------------------------------------------------
    def start_measure(self, tool: str) -> None:
        """The next left-drag on the image draws a ``ruler`` or a region of interest (``roi``: an ellipse;
        ``rect``), kept out of the annotations; box drawing and editing resume after it."""
        self.measure_tools.start(tool)

    def clear_measurements(self) -> None:
        """Remove the rulers and regions from the image, and stop a tool waiting for its drag (Esc)."""
        self.measure_tools.clear()

    def _on_measure_mode(self, kind: str) -> None:
        if kind:
            what = _MEASURE_HINTS.get(kind, "on the image")
            self.statusMessage.emit(f"Drag {what} (not saved with the annotations; Esc clears measurements)")

    # -- boxes ------------------------------------------------------------------------------------------------------
    def show_boxes(self, mine: Sequence[Vertebra], others: Sequence[Vertebra] = (), *, selected: int | None = None,
                   selected_other: int | None = None, editable: bool = True, others_from_model: bool = True,
                   unlabelled_others: Collection[int] = (), flag_unsure: bool = True,
                   call: ModelCall | None = None) -> None:
        """See :meth:`BoxOverlay.show`; ``editable`` also lets a left-drag on the image draw a box."""
        self.overlay.show(mine, others, selected=selected, selected_other=selected_other, mine_editable=editable,
                          others_from_model=others_from_model, unlabelled_others=unlabelled_others,
                          flag_unsure=flag_unsure, call=call)
        self.view.drawing_enabled = editable and self._image is not None

    def update_boxes(self, indices: Sequence[int], mine: Sequence[Vertebra], selected: int | None) -> None:
        """Only the reader's boxes ``indices`` changed: see :meth:`BoxOverlay.update_mine`."""
        self.overlay.update_mine(indices, mine, selected)

    def select_boxes(self, selected: int | None, selected_other: int | None = None) -> None:
        """Only the selection changed: see :meth:`BoxOverlay.select`."""
        self.overlay.select(selected, selected_other)

    def show_readers(self, versions: Sequence[DrawnVersion]) -> None:
        """The readers' boxes in their own colours and line styles (co-annotation, or the other readers')."""
        self.readers.show(versions)

    def _on_box_drawn(self, rect: QtCore.QRectF) -> None:
        try:
            self.boxDrawn.emit(Box(rect.left(), rect.top(), rect.right(), rect.bottom()))
        except ValueError:
            pass  # a click, not a box

    def _on_box_select(self, layer: str, index: int) -> None:
        (self.boxSelected if layer == "mine" else self.otherBoxSelected).emit(index)

    def _on_box_edit(self, layer: str, index: int, box: Box | None, finished: bool) -> None:
        if finished and box is not None:
            (self.boxEdited if layer == "mine" else self.otherBoxEdited).emit(index, box)

    # -- banners ----------------------------------------------------------------------------------------------------
    def set_demo_banner(self, text: str | None) -> None:
        self.demo_banner.setText(text or "")
        self.demo_banner.setVisible(bool(text))

    def set_notice(self, text: str | None) -> None:
        self.notice_banner.setText(text or "")
        self.notice_banner.setVisible(bool(text))

    def set_model_notice(self, text: str | None) -> None:
        """Say over the image that the model found no vertebrae, or too few, on this slice (None hides it)."""
        self.model_notice.setText(f"⚠ {text}" if text else "")
        self.model_notice.setVisible(bool(text))

    # -- geometry ---------------------------------------------------------------------------------------------------
    def image_to_viewport(self, x: float, y: float) -> QtCore.QPoint:
        """Where image pixel coordinates (x, y) are on the graphics viewport (for tests and benchmarks)."""
        scene = self.view.mapViewToScene(QtCore.QPointF(x, y))
        return self.graphics.mapFromScene(scene)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._fitted:
            QtCore.QTimer.singleShot(0, self, self.fit)
        self._update_scale()
        self.corner_text.place()

    def _update_scale(self, *args) -> None:
        """The scale bar and the zoom in the corner, whenever the zoom or the view's size changes."""
        image, zoom = self._image, self.zoom_factor()
        self.corner_text.show_zoom(zoom)
        if image is None or image.spacing_mm is None or zoom is None:
            self.scale_bar.measure(None)
            return
        self.scale_bar.measure(image.spacing_mm[1] / zoom)
        self.scale_bar.move(4, self.graphics.height() - self.scale_bar.height() - 4)

    def _on_mouse_moved(self, scene_pos: QtCore.QPointF) -> None:
        if self._image is None:
            return
        point = self.view.mapSceneToView(scene_pos)
        col, row = int(np.floor(point.x())), int(np.floor(point.y()))
        if 0 <= row < self._image.height and 0 <= col < self._image.width:
            self.cursorMoved.emit((col, row, float(self._image.pixels[row, col])))
        else:
            self.cursorMoved.emit(None)

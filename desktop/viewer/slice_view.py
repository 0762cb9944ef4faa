"""The slice viewer: a pyqtgraph image with explicit levels, PACS-style right-drag window/level, and a cursor
read-out of the pixel value (HU for CT)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from core.annotations.model import SliceAnnotation
from core.imaging.image import SliceImage
from core.imaging.windowing import Window
from desktop.viewer.box_overlay import BoxOverlay


class _ImageViewBox(pg.ViewBox):
    """A view box whose right-button drag changes window and level instead of zooming."""

    windowDragged = QtCore.Signal(float, float)

    def __init__(self) -> None:
        super().__init__(lockAspect=True, invertY=True, enableMenu=False)

    def mouseDragEvent(self, ev, axis=None):
        if ev.button() == QtCore.Qt.MouseButton.RightButton:
            ev.accept()
            delta = ev.screenPos() - ev.lastScreenPos()
            self.windowDragged.emit(float(delta.x()), float(delta.y()))
            return
        super().mouseDragEvent(ev, axis)


class SliceView(QtWidgets.QWidget):
    """Shows one :class:`SliceImage` through a window, with optional vertebra boxes."""

    cursorMoved = QtCore.Signal(object)  # (column, row, value) or None when off the image
    windowDragged = QtCore.Signal(float, float)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.graphics = pg.GraphicsView(self)
        self.graphics.setBackground("k")
        self.view = _ImageViewBox()
        self.graphics.setCentralItem(self.view)
        self.image_item = pg.ImageItem(axisOrder="row-major", autoDownsample=True)
        self.view.addItem(self.image_item)
        self.overlay = BoxOverlay(self.view)
        self.view.windowDragged.connect(self.windowDragged)
        self.graphics.scene().sigMouseMoved.connect(self._on_mouse_moved)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.graphics)
        self._image: SliceImage | None = None
        self._window: Window | None = None

    @property
    def image(self) -> SliceImage | None:
        return self._image

    def set_slice(self, image: SliceImage, window: Window, *, fit: bool = False) -> None:
        """Show ``image`` through ``window``; keep the zoom unless ``fit`` or the size changed."""
        resized = self._image is None or self._image.pixels.shape != image.pixels.shape
        self._image = image
        self._window = window
        pixels = np.ascontiguousarray(image.pixels, dtype=np.float32)
        self.image_item.setImage(pixels, levels=(window.lower, window.upper), autoLevels=False)
        row_mm, col_mm = image.spacing_mm or (1.0, 1.0)
        self.view.setAspectLocked(True, ratio=col_mm / row_mm if row_mm else 1.0)
        if fit or resized:
            self.fit()

    def set_window(self, window: Window) -> None:
        self._window = window
        if self._image is not None:
            self.image_item.setLevels((window.lower, window.upper))

    def set_annotation(self, annotation: SliceAnnotation | None) -> None:
        self.overlay.show(annotation)

    def fit(self) -> None:
        if self._image is not None:
            self.view.setRange(
                QtCore.QRectF(0, 0, self._image.width, self._image.height), padding=0.02, disableAutoRange=True
            )

    def clear(self) -> None:
        self._image = None
        self.image_item.clear()
        self.overlay.clear()

    def _on_mouse_moved(self, scene_pos: QtCore.QPointF) -> None:
        if self._image is None:
            return
        point = self.view.mapSceneToView(scene_pos)
        col, row = int(np.floor(point.x())), int(np.floor(point.y()))
        if 0 <= row < self._image.height and 0 <= col < self._image.width:
            self.cursorMoved.emit((col, row, float(self._image.pixels[row, col])))
        else:
            self.cursorMoved.emit(None)

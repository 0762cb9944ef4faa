"""The image's view box: left-drag on the image draws a box, right-drag sets window and level (as on a PACS),
middle-drag or Shift+left-drag pans, the wheel pages through slices and Ctrl+wheel zooms."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

_WHEEL_STEP = 120  # one notch of a mouse wheel; touchpads send smaller deltas, which add up


class ImageViewBox(pg.ViewBox):
    windowDragged = QtCore.Signal(float, float)
    wheelStepped = QtCore.Signal(int)
    boxDrawn = QtCore.Signal(object)  # QRectF in image pixels
    emptyClicked = QtCore.Signal()

    def __init__(self) -> None:
        super().__init__(lockAspect=True, invertY=True, enableMenu=False)
        self.drawing_enabled = False
        self._wheel = 0
        self.rubber_band = QtWidgets.QGraphicsRectItem()
        pen = QtGui.QPen(QtGui.QColor("white"), 1.5, QtCore.Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        self.rubber_band.setPen(pen)
        self.rubber_band.setZValue(20)
        self.rubber_band.setVisible(False)
        self.addItem(self.rubber_band, ignoreBounds=True)

    def mouseDragEvent(self, ev, axis=None):
        button = ev.button()
        if button == QtCore.Qt.MouseButton.RightButton:
            ev.accept()
            delta = ev.screenPos() - ev.lastScreenPos()
            self.windowDragged.emit(float(delta.x()), float(delta.y()))
            return
        shift = bool(ev.modifiers() & QtCore.Qt.KeyboardModifier.ShiftModifier)
        if button == QtCore.Qt.MouseButton.LeftButton and self.drawing_enabled and not shift:
            ev.accept()
            rect = QtCore.QRectF(self.mapToView(ev.buttonDownPos()), self.mapToView(ev.pos())).normalized()
            self.rubber_band.setRect(rect)
            self.rubber_band.setVisible(not ev.isFinish())
            if ev.isFinish():
                self.boxDrawn.emit(rect)
            return
        if button == QtCore.Qt.MouseButton.LeftButton and shift:
            ev = _AsMiddleButton(ev)
        super().mouseDragEvent(ev, axis)

    def mouseClickEvent(self, ev):
        if ev.button() == QtCore.Qt.MouseButton.LeftButton:
            ev.accept()
            self.emptyClicked.emit()
            return
        super().mouseClickEvent(ev)

    def wheelEvent(self, ev, axis=None):
        if ev.modifiers() & QtCore.Qt.KeyboardModifier.ControlModifier:
            super().wheelEvent(ev, axis)
            return
        ev.accept()
        self._wheel += ev.delta()
        steps = int(self._wheel / _WHEEL_STEP)
        if steps:
            self._wheel -= steps * _WHEEL_STEP
            self.wheelStepped.emit(-steps)  # wheel up (away from you) goes to the previous slice


class _AsMiddleButton:
    """A drag event that says it comes from the middle button (the view box pans on it)."""

    def __init__(self, event) -> None:
        self._event = event

    def button(self):
        return QtCore.Qt.MouseButton.MiddleButton

    def __getattr__(self, name):
        return getattr(self._event, name)

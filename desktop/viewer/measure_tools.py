"""The viewer's measuring tools: a distance ruler and a region of interest (ellipse or rectangle) with the mean, SD
and area of the slice's own values (HU for CT).

A tool is started for one measurement (:meth:`MeasureTools.start`); the next left-drag on the image draws it, over
the boxes, which neither move nor get drawn meanwhile; then the view goes back to drawing boxes. Measurements are
the viewer's alone: never written to an annotation file, never on the undo stack. They belong to the slice they
were made on and are cleared when another slice is shown, or by :meth:`MeasureTools.clear` (Esc).
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6 import QtCore, QtGui

from core.imaging.image import SliceImage
from desktop.viewer.measurement_item import ELLIPSE, MEASURE_Z, RECTANGLE, RULER, MeasurementItem

_LEFT = QtCore.Qt.MouseButton.LeftButton
#: What :meth:`MeasureTools.start` takes: ``roi`` is the ellipse.
TOOLS = {"ruler": RULER, "roi": ELLIPSE, "ellipse": ELLIPSE, "rect": RECTANGLE, "rectangle": RECTANGLE}


class _Capture(pg.GraphicsObject):
    """An invisible cover over the image while a tool is on: it takes the left-drag before any box does."""

    def __init__(self, on_drag) -> None:
        super().__init__()
        self._rect = QtCore.QRectF()
        self._on_drag = on_drag
        self.setZValue(MEASURE_Z + 5)
        self.setVisible(False)

    def cover(self, width: float, height: float) -> None:
        """Cover the image and as much again around it (a ruler may start just outside the image)."""
        self.prepareGeometryChange()
        self._rect = QtCore.QRectF(-width, -height, 3 * width, 3 * height)

    def boundingRect(self) -> QtCore.QRectF:
        return QtCore.QRectF(self._rect)

    def paint(self, painter: QtGui.QPainter, *args) -> None:
        pass

    def hoverEvent(self, ev) -> None:
        if not ev.isExit():
            ev.acceptDrags(_LEFT)
            ev.acceptClicks(_LEFT)

    def mouseClickEvent(self, ev) -> None:
        if ev.button() == _LEFT:
            ev.accept()  # a click neither selects a box nor clears the selection while measuring
        else:
            ev.ignore()

    def mouseDragEvent(self, ev) -> None:
        shift = bool(ev.modifiers() & QtCore.Qt.KeyboardModifier.ShiftModifier)
        if ev.button() != _LEFT or shift:
            ev.ignore()  # right-drag windows, middle- or Shift+left-drag pans, as always
            return
        ev.accept()
        self._on_drag(ev.buttonDownPos(), ev.pos(), ev.isStart(), ev.isFinish())


class MeasureTools(QtCore.QObject):
    """``modeChanged(str)``: the tool waiting for its drag, or "" when none. ``measured(str)``: a measurement's
    figures once it is drawn."""

    modeChanged = QtCore.Signal(str)
    measured = QtCore.Signal(str)

    def __init__(self, view: pg.ViewBox, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self._view = view
        self._image: SliceImage | None = None
        self._items: list[MeasurementItem] = []
        self._drawing: MeasurementItem | None = None
        self.mode = ""
        self._capture = _Capture(self._on_drag)
        self._capture.setCursor(QtCore.Qt.CursorShape.CrossCursor)
        view.addItem(self._capture, ignoreBounds=True)

    def items(self) -> list[MeasurementItem]:
        """The finished measurements on the slice shown."""
        return list(self._items)

    def set_image(self, image: SliceImage | None) -> None:
        """Another slice (not the same one shown again) clears the measurements."""
        if image is self._image:
            return
        self.clear()
        self._image = image
        if image is not None:
            self._capture.cover(image.width, image.height)

    def start(self, tool: str) -> None:
        """Wait for a left-drag that draws ``tool`` (``ruler``, ``roi`` or ``ellipse``, ``rect``)."""
        if tool not in TOOLS:
            raise ValueError(f"no measuring tool {tool!r}; there are {', '.join(sorted(TOOLS))}")
        if self._image is None:
            return
        self._set_mode(TOOLS[tool])

    def cancel(self) -> None:
        """Stop waiting for a drag (the measurements stay)."""
        self._drop_drawing()
        self._set_mode("")

    def clear(self) -> None:
        """Remove every measurement and stop any tool."""
        self.cancel()
        for item in self._items:
            self._remove(item)
        self._items.clear()

    def _set_mode(self, kind: str) -> None:
        self._capture.setVisible(bool(kind))
        if kind != self.mode:
            self.mode = kind
            scene = self._view.scene()
            if scene is not None:
                # pyqtgraph hands a drag to the item that took the last hover; with the pointer still resting on a
                # box (or on the cover just hidden) that would be the wrong one: let the next press look again
                scene.lastHoverEvent = None
            self.modeChanged.emit(kind)

    def _on_drag(self, start: QtCore.QPointF, end: QtCore.QPointF, first: bool, last: bool) -> None:
        if first or self._drawing is None:
            self._drop_drawing()
            self._drawing = MeasurementItem(self.mode or RULER, start)
            self._view.addItem(self._drawing, ignoreBounds=True)
            self._view.addItem(self._drawing.label, ignoreBounds=True)
        self._drawing.set_end(end, self._image)
        if not last:
            return
        item, self._drawing = self._drawing, None
        if item.length() < 1.0:  # a click, not a measurement: the tool waits on
            self._remove(item)
            return
        self._items.append(item)
        self._set_mode("")
        self.measured.emit(item.text.replace("\n", ", "))

    def _drop_drawing(self) -> None:
        if self._drawing is not None:
            self._remove(self._drawing)
            self._drawing = None

    def _remove(self, item: MeasurementItem) -> None:
        for part in (item.label, item):
            self._view.removeItem(part)

"""One measurement drawn on the image: a ruler (a line with its length) or a region of interest (an ellipse or a
rectangle with its mean, SD and area). It takes no mouse buttons, so the boxes under it stay clickable; its label is
an item of its own at a fixed screen size, which the tools add to the view beside it."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6 import QtCore, QtGui

from core.imaging.image import SliceImage
from core.imaging.measure import distance_text, roi_stats

RULER, ELLIPSE, RECTANGLE = "ruler", "ellipse", "rectangle"
KINDS = (RULER, ELLIPSE, RECTANGLE)
MEASURE_Z = 30  # above the boxes (at most 12) and their chips (15)
_TICK_PX = 5  # half the length of the ruler's end ticks, in screen pixels
_PAD_PX = _TICK_PX + 2


def _pen(colour: str, width: float) -> QtGui.QPen:
    pen = QtGui.QPen(QtGui.QColor(colour), width)
    pen.setCosmetic(True)
    pen.setCapStyle(QtCore.Qt.PenCapStyle.RoundCap)
    return pen


_UNDER, _OVER = _pen("black", 4.0), _pen("#FFFFFF", 2.0)


class MeasurementItem(pg.GraphicsObject):
    """A ruler or region from ``start`` to ``end`` (image pixels); :meth:`measure` puts the figures in ``label``."""

    def __init__(self, kind: str, start: QtCore.QPointF) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"a measurement is one of {', '.join(KINDS)}, not {kind!r}")
        self.kind = kind
        self.start, self.end = QtCore.QPointF(start), QtCore.QPointF(start)
        self.text = ""
        self._pad = 0.0
        self.setAcceptedMouseButtons(QtCore.Qt.MouseButton.NoButton)
        self.setZValue(MEASURE_Z)
        self.label = pg.TextItem("", color="w", fill=pg.mkBrush(0, 0, 0, 190))
        self.label.setZValue(MEASURE_Z + 1)
        self.label.setAcceptedMouseButtons(QtCore.Qt.MouseButton.NoButton)

    def rect(self) -> QtCore.QRectF:
        return QtCore.QRectF(self.start, self.end).normalized()

    def set_end(self, end: QtCore.QPointF, image: SliceImage | None) -> None:
        self.prepareGeometryChange()
        self.end = QtCore.QPointF(end)
        self.measure(image)
        self.update()

    def measure(self, image: SliceImage | None) -> None:
        """Work out the figures on ``image`` (its own values, HU for CT) and place the label beside the shape."""
        if image is None:
            self.text = ""
        elif self.kind == RULER:
            self.text = distance_text((self.start.x(), self.start.y()), (self.end.x(), self.end.y()),
                                      image.spacing_mm)
        else:
            rect = self.rect()
            self.text = "\n".join(roi_stats(image, (rect.left(), rect.top(), rect.right(), rect.bottom()),
                                            self.kind).lines())
        self.label.setText(self.text)
        if self.kind == RULER:  # beyond the end the line was drawn to, clear of its tick
            self.label.setAnchor((-0.12 if self.end.x() >= self.start.x() else 1.12, 0.5))
            self.label.setPos(self.end)
        else:  # to the right of the region, level with its top
            rect = self.rect()
            self.label.setAnchor((-0.04, 0.0))
            self.label.setPos(QtCore.QPointF(rect.right(), rect.top()))

    def length(self) -> float:
        """The drawn size in image pixels (a click draws nothing)."""
        delta = self.end - self.start
        return max(abs(delta.x()), abs(delta.y()))

    # -- drawing ----------------------------------------------------------------------------------------------------
    def viewTransformChanged(self) -> None:
        super().viewTransformChanged()
        length = self.pixelLength(QtCore.QPointF(1, 0))
        self.prepareGeometryChange()
        self._pad = _PAD_PX * length if length else 0.0

    def boundingRect(self) -> QtCore.QRectF:
        return self.rect().adjusted(-self._pad, -self._pad, self._pad, self._pad)

    def _ticks(self) -> list[QtCore.QLineF]:
        """Short strokes across both ends of the ruler, a fixed size on screen."""
        line = QtCore.QLineF(self.start, self.end)
        if line.length() == 0 or not self._pad:
            return []
        half = self._pad * _TICK_PX / _PAD_PX
        normal = line.normalVector().unitVector()
        across = QtCore.QPointF(normal.dx() * half, normal.dy() * half)
        return [QtCore.QLineF(p - across, p + across) for p in (self.start, self.end)]

    def paint(self, painter: QtGui.QPainter, *args) -> None:
        painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing, True)
        painter.setBrush(QtCore.Qt.BrushStyle.NoBrush)
        for pen in (_UNDER, _OVER):
            painter.setPen(pen)
            if self.kind == RULER:
                painter.drawLine(self.start, self.end)
                painter.drawLines(self._ticks())
            elif self.kind == ELLIPSE:
                painter.drawEllipse(self.rect())
            else:
                painter.drawRect(self.rect())

"""One reader's box when readers are overlaid (co-annotation, or the other readers' boxes in review): the reader's
own colour and line style (:mod:`core.consensus.styles`) over a contrasting underlay, so that a black or dark box
still shows on dark CT, and a chip with the reader's name and label on the right. Read-only: clicks go through to
the view."""

from __future__ import annotations

from dataclasses import dataclass

import pyqtgraph as pg
from PySide6 import QtCore, QtGui

from core.annotations.model import Vertebra
from core.consensus.styles import ReaderStyle
from desktop.viewer.label_chip import LabelChip


@dataclass(frozen=True)
class DrawnVersion:
    """A reader's vertebra to draw: ``current`` ones are bold with a chip; ``row`` stacks the chips of boxes that
    lie over each other (0 on the box's centre line, 1 below it, -1 above)."""

    reader: str
    vertebra: Vertebra
    style: ReaderStyle
    text: str
    row: float = 0.0
    current: bool = True


def reader_pens(style: ReaderStyle, current: bool) -> tuple[QtGui.QPen, QtGui.QPen]:
    """(underlay, line): the line in the reader's colour and dash pattern, over a lighter or darker underlay."""
    colour = QtGui.QColor(style.colour)
    width = 2.5 if current else 1.0
    if not current:
        colour.setAlpha(150)
    line = QtGui.QPen(colour, width)
    line.setCosmetic(True)
    if style.dash:
        line.setDashPattern(list(style.dash))
    under_colour = QtGui.QColor(255, 255, 255, 170 if current else 80) if colour.lightness() < 110 \
        else QtGui.QColor(0, 0, 0, 170 if current else 80)
    under = QtGui.QPen(under_colour, width + 2)
    under.setCosmetic(True)
    return under, line


class ReaderBoxItem(pg.GraphicsObject):
    def __init__(self) -> None:
        super().__init__()
        self.version: DrawnVersion | None = None
        self._rect = QtCore.QRectF()
        self._under, self._line = QtGui.QPen(), QtGui.QPen()
        self._pad = 0.0
        self.chip = LabelChip(self)
        self.setAcceptedMouseButtons(QtCore.Qt.MouseButton.NoButton)
        self.setZValue(8)

    def show_version(self, version: DrawnVersion) -> None:
        self.version = version
        self._under, self._line = reader_pens(version.style, version.current)
        self.chip.set_label(version.text, QtGui.QColor(version.style.colour), right=True, row=version.row)
        self.chip.setVisible(version.current and bool(version.text))
        box = version.vertebra.box
        self.prepareGeometryChange()
        self._rect = QtCore.QRectF(box.x1, box.y1, box.width, box.height)
        self.chip.setPos(self._rect.right(), self._rect.center().y())
        self.setZValue(8 if version.current else 7)
        self.setVisible(True)
        self.update()

    def rect(self) -> QtCore.QRectF:
        return QtCore.QRectF(self._rect)

    def line_pen(self) -> QtGui.QPen:
        return QtGui.QPen(self._line)

    def viewTransformChanged(self) -> None:
        super().viewTransformChanged()
        length = self.pixelLength(QtCore.QPointF(1, 0))
        self.prepareGeometryChange()
        self._pad = 5 * length if length else 0.0

    def boundingRect(self) -> QtCore.QRectF:
        return self._rect.adjusted(-self._pad, -self._pad, self._pad, self._pad)

    def paint(self, painter: QtGui.QPainter, *args) -> None:
        painter.setBrush(QtCore.Qt.BrushStyle.NoBrush)
        painter.setPen(self._under)
        painter.drawRect(self._rect)
        painter.setPen(self._line)
        painter.drawRect(self._rect)

"""One vertebra box on the image: outline coloured by diagnosis, a label chip, and (when editable and selected)
eight handles. Dragging inside moves the box, dragging a handle or an edge resizes it; every move of the drag is
reported, with ``finished`` set on the release (the one that is saved), and the view redraws only this item. The
chip is an item of its own, above every box (the overlay adds it to the view and stacks the chips), so no halo or
handle covers its text."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pyqtgraph as pg
from PySide6 import QtCore, QtGui

from core.annotations.colours import colour_for
from core.annotations.model import Vertebra
from desktop.viewer.label_chip import CHIP_Z, LabelChip

LOW_CONFIDENCE_COLOUR = "#F0E442"  # Okabe-Ito yellow: not used by any diagnosis
HANDLE_PX = 7
GRAB_PX = 6  # how close (screen pixels) to an edge or corner a press counts as grabbing it
_LEFT = QtCore.Qt.MouseButton.LeftButton


@dataclass(frozen=True)
class BoxStyle:
    """How a box is drawn and what the mouse may do with it: a reader's box is solid, the model's dashed; a click
    selects a ``selectable`` box, a drag moves or resizes an ``editable`` one (a model box's edit takes it into the
    reader's result)."""

    editable: bool = True
    dashed: bool = False
    width: float = 2.0
    selectable: bool = True


MINE = BoxStyle()
MODEL = BoxStyle(dashed=True, width=1.5)
MODEL_VIEW = BoxStyle(editable=False, dashed=True, width=1.5)  # the model's boxes alone on screen: select to look
READ_ONLY = BoxStyle(editable=False, selectable=False)


def _zone(rect: QtCore.QRectF, point: QtCore.QPointF, grab: float) -> str:
    """Which part of ``rect`` a press at ``point`` grabs: ``l``/``r``/``t``/``b`` edges, corners, or ``move``."""
    zone = ""
    if abs(point.y() - rect.top()) <= grab:
        zone += "t"
    elif abs(point.y() - rect.bottom()) <= grab:
        zone += "b"
    if abs(point.x() - rect.left()) <= grab:
        zone += "l"
    elif abs(point.x() - rect.right()) <= grab:
        zone += "r"
    return zone or "move"


def dragged_rect(start: QtCore.QRectF, zone: str, delta: QtCore.QPointF) -> QtCore.QRectF:
    """``start`` moved (zone ``move``) or with the grabbed edges shifted by ``delta``; always normalised."""
    if zone == "move":
        return start.translated(delta)
    left, top, right, bottom = start.left(), start.top(), start.right(), start.bottom()
    if "l" in zone:
        left += delta.x()
    if "r" in zone:
        right += delta.x()
    if "t" in zone:
        top += delta.y()
    if "b" in zone:
        bottom += delta.y()
    return QtCore.QRectF(QtCore.QPointF(left, top), QtCore.QPointF(right, bottom)).normalized()


_CURSORS = {
    "move": QtCore.Qt.CursorShape.SizeAllCursor,
    "l": QtCore.Qt.CursorShape.SizeHorCursor,
    "r": QtCore.Qt.CursorShape.SizeHorCursor,
    "t": QtCore.Qt.CursorShape.SizeVerCursor,
    "b": QtCore.Qt.CursorShape.SizeVerCursor,
    "tl": QtCore.Qt.CursorShape.SizeFDiagCursor,
    "br": QtCore.Qt.CursorShape.SizeFDiagCursor,
    "tr": QtCore.Qt.CursorShape.SizeBDiagCursor,
    "bl": QtCore.Qt.CursorShape.SizeBDiagCursor,
}


_PENS: dict[tuple[str, float, bool], tuple[QtGui.QColor, QtGui.QPen]] = {}


def _pen(colour: str, width: float, dashed: bool) -> tuple[QtGui.QColor, QtGui.QPen]:
    """The colour and the box's cosmetic pen, made once for each (colour, width, dash): paging redraws 40 boxes."""
    key = (colour, width, dashed)
    if key not in _PENS:
        pen = QtGui.QPen(QtGui.QColor(colour), width)
        pen.setCosmetic(True)
        if dashed:
            pen.setStyle(QtCore.Qt.PenStyle.DashLine)
        _PENS[key] = (QtGui.QColor(colour), pen)
    return _PENS[key]


class VertebraBoxItem(pg.GraphicsObject):
    """A box in image pixel coordinates (the item itself has no transform). ``layer`` is ``mine`` or ``other``."""

    def __init__(self, layer: str, on_select: Callable[[VertebraBoxItem], None],
                 on_edit: Callable[[VertebraBoxItem, QtCore.QRectF, bool], None]) -> None:
        super().__init__()
        self.index, self.layer = -1, layer
        self.style = MINE
        self.selected = False
        self._colour = colour_for(frozenset())
        self.low_confidence = False
        self._rect = QtCore.QRectF()
        self._pen = QtGui.QPen()
        self._pad = 0.0
        self._drag: tuple[str, QtCore.QRectF] | None = None
        self._on_select, self._on_edit = on_select, on_edit
        self.chip = LabelChip()
        self.chip.setZValue(CHIP_Z)
        self._z = 10
        self.setZValue(self._z)
        self._chip_at = QtCore.QPointF()
        self.setAcceptHoverEvents(True)

    # -- content ----------------------------------------------------------------------------------------------------
    def show_vertebra(self, index: int, vertebra: Vertebra, text: str, style: BoxStyle, *, low_confidence: bool,
                      selected: bool) -> None:
        self.index, self.style, self.low_confidence = index, style, low_confidence
        self._colour = colour_for(vertebra.diseases)
        colour = self._select(selected)
        self.chip.set_label(text, colour, hollow=style.dashed, warn=low_confidence, right=style.dashed)
        box = vertebra.box
        self.set_rect(QtCore.QRectF(box.x1, box.y1, box.width, box.height))
        if not self.isVisible():
            self.setVisible(True)

    def set_selected(self, selected: bool) -> None:
        """Select or unselect the box alone (a thicker outline, on top, handles), as a click or Tab does."""
        if (selected and self.style.selectable) != self.selected:
            self._select(selected)
            self.update()

    def _select(self, selected: bool) -> QtGui.QColor:
        self.selected = selected and self.style.selectable
        colour, self._pen = _pen(self._colour, self.style.width + (1.5 if self.selected else 0.0), self.style.dashed)
        z = 12 if self.selected else (9 if self.style.dashed else 10)
        if z != self._z:  # each change of an item runs pyqtgraph's Python itemChange: only when it changes
            self._z = z
            self.setZValue(z)
        return colour

    def rect(self) -> QtCore.QRectF:
        return QtCore.QRectF(self._rect)

    def set_rect(self, rect: QtCore.QRectF) -> None:
        if rect != self._rect:
            self.prepareGeometryChange()
            self._rect = QtCore.QRectF(rect)
        at = QtCore.QPointF(rect.right() if self.style.dashed else rect.left(), rect.center().y())
        if at != self._chip_at:
            self._chip_at = at
            self.chip.setPos(at)
        self.update()

    # -- drawing ----------------------------------------------------------------------------------------------------
    def viewTransformChanged(self) -> None:
        super().viewTransformChanged()
        length = self.pixelLength(QtCore.QPointF(1, 0))
        self.prepareGeometryChange()
        self._pad = (HANDLE_PX + 2) * length if length else 0.0

    def boundingRect(self) -> QtCore.QRectF:
        return self._rect.adjusted(-self._pad, -self._pad, self._pad, self._pad)

    def shape(self) -> QtGui.QPainterPath:
        path = QtGui.QPainterPath()
        grab = self._pad * GRAB_PX / (HANDLE_PX + 2) if self.style.editable else 0.0
        path.addRect(self._rect.adjusted(-grab, -grab, grab, grab))
        return path

    def paint(self, painter: QtGui.QPainter, *args) -> None:
        if self.low_confidence:
            halo = QtGui.QPen(QtGui.QColor(LOW_CONFIDENCE_COLOUR), self.style.width + 4)
            halo.setCosmetic(True)
            halo.setStyle(QtCore.Qt.PenStyle.DotLine)
            painter.setPen(halo)
            painter.drawRect(self._rect)
        painter.setPen(self._pen)
        painter.setBrush(QtCore.Qt.BrushStyle.NoBrush)
        painter.drawRect(self._rect)
        if self.selected and self.style.editable:
            handle = QtGui.QPen(QtGui.QColor("white"), HANDLE_PX)
            handle.setCosmetic(True)
            handle.setCapStyle(QtCore.Qt.PenCapStyle.SquareCap)
            painter.setPen(handle)
            r = self._rect
            xs, ys = (r.left(), r.center().x(), r.right()), (r.top(), r.center().y(), r.bottom())
            painter.drawPoints([QtCore.QPointF(x, y) for x in xs for y in ys if (x, y) != (xs[1], ys[1])])

    # -- mouse ------------------------------------------------------------------------------------------------------
    def _grab(self) -> float:
        return GRAB_PX * (self.pixelLength(QtCore.QPointF(1, 0)) or 1.0)

    def hoverEvent(self, ev) -> None:
        if not self.style.selectable or ev.isExit():
            self.unsetCursor()
            return
        ev.acceptClicks(_LEFT)
        if not self.style.editable:
            self.setCursor(QtCore.Qt.CursorShape.PointingHandCursor)
            return
        ev.acceptDrags(_LEFT)
        zone = _zone(self._rect, ev.pos(), self._grab()) if self.selected else "move"
        self.setCursor(_CURSORS[zone])

    def mouseClickEvent(self, ev) -> None:
        if self.style.selectable and ev.button() == _LEFT:
            ev.accept()
            self._on_select(self)
        else:
            ev.ignore()

    def mouseDragEvent(self, ev) -> None:
        if not self.style.editable or ev.button() != _LEFT:
            ev.ignore()
            return
        ev.accept()
        if ev.isStart():
            zone = _zone(self._rect, ev.buttonDownPos(), self._grab()) if self.selected else "move"
            self._drag = (zone, QtCore.QRectF(self._rect))
            if not self.selected:
                self._on_select(self)
        if self._drag is None:
            return
        zone, start = self._drag
        rect = dragged_rect(start, zone, ev.pos() - ev.buttonDownPos())
        self.set_rect(rect)
        self._on_edit(self, rect, ev.isFinish())
        if ev.isFinish():
            self._drag = None

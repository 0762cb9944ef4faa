"""A label chip drawn at a fixed screen size beside a box: codes, probability, level (``L1 · OVCF 0.93``)."""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

_PADDING = 3
#: Screen pixels between a box's edge and its chip: clear of the box's halo (3 px out) and its handles (4 px out).
GAP_PX = 6
#: The chips of the box overlay lie above every box, its halo and its handles.
CHIP_Z = 15


class LabelChip(QtWidgets.QGraphicsItem):
    """Ignores the view's zoom and sits beside a box, vertically centred: on the left for the reader's boxes (on a
    sagittal slice the patient faces left, so these chips lie over the soft tissue in front of the spine), on the
    right for the model's, so that the two never cover each other when the boxes coincide. The item's position is
    the middle of the box's edge; :meth:`set_offset` moves the chip up or down from there (in screen pixels, so that
    chips stacked along the spine do not overlap), with a leader line back to its box."""

    _font: QtGui.QFont | None = None
    _metrics: QtGui.QFontMetricsF | None = None

    def __init__(self, parent: QtWidgets.QGraphicsItem | None = None) -> None:
        super().__init__(parent)
        self.setFlag(QtWidgets.QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self.setAcceptedMouseButtons(QtCore.Qt.MouseButton.NoButton)
        # drawn once into a pixmap at screen size and blitted until its text, colour or offset changes
        self.setCacheMode(QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self._ensure_font()
        self.text = ""
        self.right = False
        self.offset = 0.0
        self._row = 0.0
        self._fill = QtGui.QColor("black")
        self._hollow = False
        self._rect = QtCore.QRectF()

    @classmethod
    def _ensure_font(cls) -> QtGui.QFontMetricsF:
        if cls._metrics is None:
            font = QtGui.QFont()
            font.setPointSizeF(8.5)
            font.setBold(True)
            LabelChip._font, LabelChip._metrics = font, QtGui.QFontMetricsF(font)
        return cls._metrics

    @classmethod
    def line_height(cls) -> float:
        return cls._ensure_font().height() + _PADDING

    def set_label(self, text: str, colour: QtGui.QColor, *, hollow: bool = False, warn: bool = False,
                  right: bool = False, row: float = 0.0) -> None:
        """``row`` shifts the chip by that many chip heights (chips of boxes that lie over each other)."""
        text = ("? " if warn else "") + text
        if (text, colour, hollow, right, row) == (self.text, self._fill, self._hollow, self.right, self._row):
            return  # as it was on the last slice: nothing to measure or repaint
        self.text = text
        self._fill, self._hollow, self.right, self._row = QtGui.QColor(colour), hollow, right, row
        self._place()

    def set_offset(self, offset: float) -> None:
        """Move the chip ``offset`` screen pixels down (up when negative) from the middle of its box's edge."""
        if offset != self.offset:
            self.offset = offset
            self._place()

    def _place(self) -> None:
        self.prepareGeometryChange()
        width = self._metrics.horizontalAdvance(self.text) + 2 * _PADDING
        height = self.line_height()
        top = -height / 2 + self._row * (height + 1) + self.offset
        self._rect = QtCore.QRectF(GAP_PX if self.right else -width - GAP_PX, top, width, height)
        self.update()

    def chip_rect(self) -> QtCore.QRectF:
        """The chip itself (without its leader line), in screen pixels from its position."""
        return QtCore.QRectF(self._rect)

    def _leader(self) -> QtCore.QLineF | None:
        if abs(self.offset) <= self._rect.height() / 2:
            return None
        edge = self._rect.left() if self.right else self._rect.right()
        return QtCore.QLineF(QtCore.QPointF(edge, self._rect.center().y()), QtCore.QPointF(0, 0))

    def boundingRect(self) -> QtCore.QRectF:
        leader = self._leader()
        if leader is None:
            return QtCore.QRectF(self._rect)
        return self._rect.united(QtCore.QRectF(leader.p1(), leader.p2()).normalized().adjusted(-1, -1, 1, 1))

    def paint(self, painter: QtGui.QPainter, *args) -> None:
        if not self.text:
            return
        painter.setFont(self._font)
        leader = self._leader()
        if leader is not None:
            painter.setPen(QtGui.QPen(self._fill, 1))
            painter.drawLine(leader)
        if self._hollow:
            painter.setPen(QtGui.QPen(self._fill, 1))
            painter.setBrush(QtGui.QColor(0, 0, 0, 170))
            text_colour = self._fill
        else:
            painter.setPen(QtCore.Qt.PenStyle.NoPen)
            painter.setBrush(self._fill)
            text_colour = QtGui.QColor("black") if self._fill.lightness() > 110 else QtGui.QColor("white")
        painter.drawRect(self._rect)
        painter.setPen(text_colour)
        painter.drawText(self._rect.adjusted(_PADDING, 0, 0, 0), QtCore.Qt.AlignmentFlag.AlignVCenter, self.text)

"""A label chip drawn at a fixed screen size beside a box: codes, probability, level (``L1 · OVCF 0.93``)."""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

_PADDING = 3


class LabelChip(QtWidgets.QGraphicsItem):
    """Ignores the view's zoom and sits beside a box, vertically centred: on the left for the reader's boxes (on a
    sagittal slice the patient faces left, so these chips lie over the soft tissue in front of the spine), on the
    right for the model's, so that the two never cover each other when the boxes coincide."""

    _font: QtGui.QFont | None = None
    _metrics: QtGui.QFontMetricsF | None = None

    def __init__(self, parent: QtWidgets.QGraphicsItem) -> None:
        super().__init__(parent)
        self.setFlag(QtWidgets.QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self.setAcceptedMouseButtons(QtCore.Qt.MouseButton.NoButton)
        if LabelChip._font is None:
            font = QtGui.QFont()
            font.setPointSizeF(8.5)
            font.setBold(True)
            LabelChip._font, LabelChip._metrics = font, QtGui.QFontMetricsF(font)
        self.text = ""
        self._fill = QtGui.QColor("black")
        self._hollow = False
        self._rect = QtCore.QRectF()

    def set_label(self, text: str, colour: QtGui.QColor, *, hollow: bool = False, warn: bool = False,
                  right: bool = False, row: float = 0.0) -> None:
        """``row`` shifts the chip by that many chip heights (chips of boxes that lie over each other)."""
        self.prepareGeometryChange()
        self.text = ("? " if warn else "") + text
        self._fill, self._hollow = colour, hollow
        width = self._metrics.horizontalAdvance(self.text) + 2 * _PADDING
        height = self._metrics.height() + _PADDING
        self._rect = QtCore.QRectF(2 if right else -width - 2, -height / 2 + row * (height + 1), width, height)
        self.update()

    def boundingRect(self) -> QtCore.QRectF:
        return self._rect

    def paint(self, painter: QtGui.QPainter, *args) -> None:
        if not self.text:
            return
        painter.setFont(self._font)
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

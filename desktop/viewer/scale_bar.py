"""A scale bar in mm over the bottom-left corner of the image view, re-measured whenever the zoom changes."""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

_NICE_MM = (1, 2, 5, 10, 20, 50, 100, 200, 500)
_TARGET_PX = 110


def nice_length(mm_per_screen_px: float) -> tuple[float, float]:
    """The round length in mm whose bar is closest to about 110 screen pixels, and that bar's length in pixels."""
    best = min(_NICE_MM, key=lambda mm: abs(mm / mm_per_screen_px - _TARGET_PX))
    return float(best), best / mm_per_screen_px


class ScaleBar(QtWidgets.QWidget):
    def __init__(self, parent: QtWidgets.QWidget) -> None:
        super().__init__(parent)
        self.setAttribute(QtCore.Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.resize(170, 34)
        self.mm = 0.0
        self.length_px = 0.0

    def measure(self, mm_per_screen_px: float | None) -> None:
        """``None`` hides the bar (no pixel spacing known, or nothing shown)."""
        if not mm_per_screen_px or mm_per_screen_px <= 0:
            self.mm, self.length_px = 0.0, 0.0
            self.hide()
            return
        self.mm, self.length_px = nice_length(mm_per_screen_px)
        self.resize(int(max(170, self.length_px + 30)), 34)
        self.show()
        self.update()

    def text(self) -> str:
        return f"{self.mm:g} mm" if self.mm else ""

    def paintEvent(self, event: QtGui.QPaintEvent) -> None:
        if not self.mm:
            return
        painter = QtGui.QPainter(self)
        painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing, False)
        x0, y = 10.0, self.height() - 10.0
        x1 = x0 + self.length_px
        for colour, width in (("black", 5), ("white", 2)):
            painter.setPen(QtGui.QPen(QtGui.QColor(colour), width))
            painter.drawLine(QtCore.QPointF(x0, y), QtCore.QPointF(x1, y))
            painter.drawLine(QtCore.QPointF(x0, y - 5), QtCore.QPointF(x0, y))
            painter.drawLine(QtCore.QPointF(x1, y - 5), QtCore.QPointF(x1, y))
        painter.setPen(QtGui.QColor("white"))
        painter.drawText(QtCore.QPointF(x0, y - 8), self.text())
        painter.end()

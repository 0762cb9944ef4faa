"""Vertebra boxes drawn over the slice, coloured by diagnosis, with a label chip (codes, probability, level)."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from core.annotations.colours import colour_for
from core.annotations.model import SliceAnnotation, Vertebra


def chip_text(vertebra: Vertebra) -> str:
    parts = [vertebra.label]
    if vertebra.probabilities:
        top = max((p for code, p in vertebra.probabilities.items() if code in vertebra.label.split("+")), default=None)
        if top is not None:
            parts[0] += f" {top:.2f}"
    if vertebra.level:
        parts.insert(0, vertebra.level)
    return " · ".join(parts)


class BoxOverlay:
    """The boxes of one annotation in a view box (read-only)."""

    def __init__(self, view: pg.ViewBox) -> None:
        self._view = view
        self._items: list[QtWidgets.QGraphicsItem] = []

    def clear(self) -> None:
        for item in self._items:
            self._view.removeItem(item)
        self._items.clear()

    @property
    def count(self) -> int:
        return sum(isinstance(i, QtWidgets.QGraphicsRectItem) for i in self._items)

    def show(self, annotation: SliceAnnotation | None) -> None:
        self.clear()
        if annotation is None:
            return
        for vertebra in annotation.vertebrae:
            box = vertebra.box
            colour = QtGui.QColor(colour_for(vertebra.diseases))
            rect = QtWidgets.QGraphicsRectItem(QtCore.QRectF(box.x1, box.y1, box.width, box.height))
            pen = QtGui.QPen(colour, 2)
            pen.setCosmetic(True)
            rect.setPen(pen)
            rect.setZValue(10)
            label = pg.TextItem(chip_text(vertebra), color="w", fill=pg.mkBrush(colour), anchor=(0, 1))
            label.setPos(box.x1, box.y1)
            label.setZValue(11)
            for item in (rect, label):
                self._view.addItem(item)
                self._items.append(item)

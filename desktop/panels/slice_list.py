"""The list of slices of what is open; selecting one shows it."""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from core.imaging.stacks import SliceStack

PROBLEM_MARK = "  ⚠"


class SliceListPanel(QtWidgets.QListWidget):
    sliceSelected = QtCore.Signal(int)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumWidth(170)
        self.currentRowChanged.connect(self._on_row)
        self._silent = False

    def set_stack(self, stack: SliceStack) -> None:
        self._silent = True
        self.clear()
        self.addItems([stack.label(i) for i in range(len(stack))])
        self._silent = False

    def mark_problem(self, index: int, problem: str) -> None:
        """Flag one slice (red, with the reason as its tooltip); the others are untouched."""
        item = self.item(index)
        if item is None:
            return
        if not item.text().endswith(PROBLEM_MARK):
            item.setText(item.text() + PROBLEM_MARK)
        item.setForeground(QtGui.QBrush(QtGui.QColor("#D55E00")))
        item.setToolTip(problem)

    def problem(self, index: int) -> str:
        item = self.item(index)
        return item.toolTip() if item is not None else ""

    def select(self, index: int) -> None:
        self._silent = True
        self.setCurrentRow(index)
        self._silent = False

    def _on_row(self, row: int) -> None:
        if not self._silent and row >= 0:
            self.sliceSelected.emit(row)

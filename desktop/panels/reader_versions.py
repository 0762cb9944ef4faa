"""The readers' versions of one vertebra side by side: each reader's line (colour and style, as on the image), label
and level (the box in the tooltip), the majority's marked, and a button that takes that reader's version."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from PySide6 import QtCore, QtGui, QtWidgets

from core.annotations.model import Vertebra
from core.consensus.coannotation import describe_version
from core.consensus.styles import ReaderStyle
from desktop.viewer.reader_box_item import reader_pens

COLUMNS = ("reader", "label", "level", "")


def line_icon(style: ReaderStyle, width: int = 36, height: int = 12) -> QtGui.QIcon:
    """A short line in the reader's colour and dash pattern, as on the image."""
    size = QtCore.QSize(width, height)
    pixmap = QtGui.QPixmap(size)
    pixmap.fill(QtGui.QColor("#6b6b6b"))
    painter = QtGui.QPainter(pixmap)
    for pen in reader_pens(style, True):
        pen.setCosmetic(False)
        painter.setPen(pen)
        painter.drawLine(2, size.height() // 2, size.width() - 2, size.height() // 2)
    painter.end()
    return QtGui.QIcon(pixmap)


def fit_height(table: QtWidgets.QTableWidget) -> None:
    """Make a table exactly as tall as its rows (it never scrolls)."""
    table.resizeRowsToContents()
    height = table.horizontalHeader().sizeHint().height() + table.verticalHeader().length() + 2 * table.frameWidth()
    table.setFixedHeight(height)


class ReaderVersionsTable(QtWidgets.QTableWidget):
    takeRequested = QtCore.Signal(str)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.setHorizontalHeaderLabels(COLUMNS)
        self.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.NoSelection)
        self.verticalHeader().setVisible(False)
        self.setIconSize(QtCore.QSize(36, 12))
        self.horizontalHeader().setStretchLastSection(True)
        self.setVerticalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.buttons: dict[str, QtWidgets.QPushButton] = {}

    def show_versions(self, versions: Mapping[str, Vertebra | None], styles: Mapping[str, ReaderStyle], *,
                      voters: Sequence[str] = (), chosen: str | None = None, enabled: bool = True) -> None:
        """One row per reader; ``voters`` (the majority) in bold; ``chosen``: the reader whose version was taken."""
        self.setRowCount(len(versions))
        self.buttons.clear()
        for row, (reader, vertebra) in enumerate(versions.items()):
            label, level, box = describe_version(vertebra)
            name = QtWidgets.QTableWidgetItem(line_icon(styles[reader]), reader)
            name.setToolTip(f"{reader}: {styles[reader].name} on the image")
            cells = [name, QtWidgets.QTableWidgetItem(label), QtWidgets.QTableWidgetItem(level)]
            for cell in cells:
                cell.setToolTip(f"{reader}: {label}" + (f", box {box} px" if box else ""))
            for column, item in enumerate(cells):
                if reader in voters:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                if reader == chosen:
                    item.setBackground(QtGui.QColor("#D9F2E6"))
                self.setItem(row, column, item)
            button = self._button(row)
            button.setToolTip(f"Take {reader}'s version of this vertebra" + (f" (key {row + 1})" if row < 9 else ""))
            button.setProperty("reader", reader)
            button.setEnabled(enabled)
            self.buttons[reader] = button
        self.resizeColumnsToContents()
        fit_height(self)

    def _button(self, row: int) -> QtWidgets.QPushButton:
        """The row's Take button (made once per row, then reused)."""
        button = self.cellWidget(row, len(COLUMNS) - 1)
        if not isinstance(button, QtWidgets.QPushButton):
            button = QtWidgets.QPushButton(f"Take ({row + 1})" if row < 9 else "Take")
            button.clicked.connect(lambda checked=False, b=button: self.takeRequested.emit(str(b.property("reader"))))
            self.setCellWidget(row, len(COLUMNS) - 1, button)
        return button

    def row_texts(self) -> list[list[str]]:
        return [[self.item(r, c).text() for c in range(len(COLUMNS) - 1)] for r in range(self.rowCount())]

"""Every model version of the study with its gate metrics, date, data counts and parent; activate any one, or roll
back to the one active before, in one step. The dialog only shows and asks; ``activateRequested(id)`` and
``rollbackRequested()`` are carried out by the retrain controller, which then refreshes the predictions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from PySide6 import QtCore, QtGui, QtWidgets

from core.models.registry import ModelSet

COLUMNS = ("version", "created", "parent", "components", "training data", "validation (new vs active)", "notes")


def gate_text(metrics: Mapping[str, Any] | None) -> str:
    """``detector AP50 0.912 (active 0.905) ✓; classifier mean AUC 0.81 (active 0.84) ✗``; empty without a gate."""
    parts = []
    for gate in (metrics or {}).get("gate", []) or []:
        if not isinstance(gate, Mapping):
            continue
        new, active = gate.get("new"), gate.get("active")
        text = f"{gate.get('component')} {gate.get('metric')} {new:.3f}" if isinstance(new, (int, float)) else ""
        if isinstance(active, (int, float)):
            text += f" (active {active:.3f})"
        parts.append(text + (" ✓" if gate.get("passed") else " ✗"))
    return "; ".join(parts)


def data_text(data: Mapping[str, Any] | None) -> str:
    data = data or {}
    if "slices" not in data:
        return ""
    boxes = data.get("boxes_per_class") or {}
    diseased = sum(v for k, v in boxes.items() if k != "NORMAL" and isinstance(v, int))
    return (f"{data.get('slices')} slices, {data.get('cases')} cases; {data.get('new_slices', 0)} new; "
            f"{diseased} diseased boxes")


class ModelVersionsDialog(QtWidgets.QDialog):
    activateRequested = QtCore.Signal(str)
    rollbackRequested = QtCore.Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Model versions")
        self.resize(980, 360)
        self.table = QtWidgets.QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().setVisible(False)
        self.heading = QtWidgets.QLabel()
        self.heading.setWordWrap(True)
        self.activate_button = QtWidgets.QPushButton("Activate the selected version")
        self.rollback_button = QtWidgets.QPushButton("Roll back to the previous version")
        close = QtWidgets.QPushButton("Close")
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addWidget(self.table, 1)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.activate_button)
        row.addWidget(self.rollback_button)
        row.addStretch(1)
        row.addWidget(close)
        layout.addLayout(row)
        self.activate_button.clicked.connect(self._activate)
        self.rollback_button.clicked.connect(self.rollbackRequested)
        close.clicked.connect(self.close)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self._active: str | None = None
        self._ids: list[str] = []

    def set_versions(self, versions: Sequence[ModelSet], active: str | None, *, newest: str | None = None,
                     busy: bool = False) -> None:
        """Fill the table (the active version in bold, ``newest`` highlighted); ``busy``: a retrain is running."""
        self._active, self._ids = active, [v.model_id for v in versions]
        self.table.setRowCount(len(versions))
        for row, version in enumerate(versions):
            notes = ", ".join(filter(None, ["active" if version.model_id == active else "",
                                            "just trained" if version.model_id == newest else "",
                                            "demo" if version.demo else ""]))
            cells = (version.model_id, version.created.replace("T", " ")[:19], version.parent or "",
                     "detector + classifier" if version.classifier else "detector only",
                     data_text(version.data), gate_text(version.metrics), notes)
            for column, text in enumerate(cells):
                item = QtWidgets.QTableWidgetItem(text)
                if version.model_id == active:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                if version.model_id == newest:
                    item.setBackground(QtGui.QColor("#FFF3C4"))
                self.table.setItem(row, column, item)
        self.table.resizeColumnsToContents()
        self.heading.setText(f"{len(versions)} versions in this study; active: <b>{active or 'none'}</b>."
                             + (" A retrain is running." if busy else ""))
        if active in self._ids:
            self.table.selectRow(self._ids.index(active))
        self._update_buttons()

    def selected_id(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        return self._ids[rows[0].row()] if rows else None

    def select(self, model_id: str) -> None:
        if model_id in self._ids:
            self.table.selectRow(self._ids.index(model_id))

    def row_texts(self) -> list[list[str]]:
        """Every cell's text, row by row (for tests)."""
        return [[self.table.item(r, c).text() for c in range(self.table.columnCount())]
                for r in range(self.table.rowCount())]

    def _update_buttons(self) -> None:
        chosen = self.selected_id()
        self.activate_button.setEnabled(chosen is not None and chosen != self._active)

    def _activate(self) -> None:
        chosen = self.selected_id()
        if chosen is not None:
            self.activateRequested.emit(chosen)

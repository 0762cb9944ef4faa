"""Every model version of the study with its gate metrics, date, data counts and parent; activate any one, or roll
back to the one active before, in one step; add the bundled demo models or a model package trained elsewhere as a
new version (a study opened from a DICOM folder or a NIfTI file has none). The dialog only shows and asks;
``activateRequested(id)``, ``rollbackRequested()``, ``addDemoRequested()`` and ``addPackageRequested(folder)`` are
carried out by the retrain controller, which then refreshes the predictions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from PySide6 import QtCore, QtGui, QtWidgets

from core.models.registry import DEMO_NOTICE, ModelSet

COLUMNS = ("version", "created", "parent", "components", "training data", "validation (new vs active)", "notes")


def plural(count: int, word: str) -> str:
    """``1 version``, ``2 versions``, ``no versions``; ``1 box``, ``2 boxes``."""
    ending = "" if count == 1 else ("es" if word.endswith(("s", "x")) else "s")
    return f"{count or 'no'} {word}{ending}"


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
    counts = [plural(n, w) if isinstance(n, int) else f"{n} {w}s" for n, w in
              ((data.get("slices"), "slice"), (data.get("cases"), "case"))]
    return f"{counts[0]}, {counts[1]}; {data.get('new_slices', 0)} new; {plural(diseased, 'diseased box')}"


def version_words(version: ModelSet) -> str:
    """``model version v2 (created 2026-11-29 15:37)``: a version as people read it."""
    created = version.created.replace("T", " ")[:16]
    return f"model version {version.model_id}" + (f" (created {created})" if created else "")


class ModelVersionsDialog(QtWidgets.QDialog):
    activateRequested = QtCore.Signal(str)
    rollbackRequested = QtCore.Signal()
    addDemoRequested = QtCore.Signal()
    addPackageRequested = QtCore.Signal(str)  # the folder the user chose

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Model versions")
        self.resize(980, 420)
        self.table = QtWidgets.QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().setVisible(False)
        self.heading = QtWidgets.QLabel()
        self.heading.setWordWrap(True)
        self.status = QtWidgets.QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.activate_button = QtWidgets.QPushButton("Activate the selected version")
        self.rollback_button = QtWidgets.QPushButton("Roll back to the previous version")
        self.add_demo_button = QtWidgets.QPushButton("Add the bundled demo models")
        self.add_demo_button.setToolTip("Copy the demo detector and classifier that come with the app into this "
                                        f"study as a new version: {DEMO_NOTICE}")
        self.add_package_button = QtWidgets.QPushButton("Add a model package…")
        self.add_package_button.setToolTip("Choose a folder with a model set, or a detector package (and a classifier "
                                           "package) trained elsewhere; it is checked, then copied in as a new "
                                           "version")
        self.demo_note = QtWidgets.QLabel("The bundled demo models were trained on synthetic phantoms: they show how "
                                          "the app works and are not for clinical use.")
        self.demo_note.setStyleSheet("color: #8A5A00")
        self.demo_note.setWordWrap(True)
        self._setup_layout()
        self.activate_button.clicked.connect(self._activate)
        self.rollback_button.clicked.connect(self.rollbackRequested)
        self.add_demo_button.clicked.connect(self.addDemoRequested)
        self.add_package_button.clicked.connect(self._ask_package)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self._active: str | None = None
        self._previous: str | None = None
        self._ids: list[str] = []

    def _setup_layout(self) -> None:
        close = QtWidgets.QPushButton("Close")
        close.clicked.connect(self.close)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.status)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.activate_button)
        row.addWidget(self.rollback_button)
        row.addStretch(1)
        layout.addLayout(row)
        adding = QtWidgets.QGroupBox("Add models to this study")
        column = QtWidgets.QVBoxLayout(adding)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(self.add_demo_button)
        buttons.addWidget(self.add_package_button)
        buttons.addStretch(1)
        column.addLayout(buttons)
        column.addWidget(self.demo_note)
        layout.addWidget(adding)
        row = QtWidgets.QHBoxLayout()
        row.addStretch(1)
        row.addWidget(close)
        layout.addLayout(row)

    def set_versions(self, versions: Sequence[ModelSet], active: str | None, *, newest: str | None = None,
                     newest_note: str = "just trained", busy: bool = False, previous: str | None = None) -> None:
        """Fill the table (the active version in bold, ``newest`` highlighted with ``newest_note``); ``busy``: a
        retrain is running; ``previous``: the version a rollback goes back to (None: there is none)."""
        self._active, self._previous, self._ids = active, previous, [v.model_id for v in versions]
        self.table.setRowCount(len(versions))
        for row, version in enumerate(versions):
            notes = ", ".join(filter(None, ["active" if version.model_id == active else "",
                                            newest_note if version.model_id == newest else "",
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
        if versions:
            count = plural(len(versions), "model version")
            text = f"{count} in this study; active: <b>{active or 'none'}</b>."
        else:
            text = ("<b>No model versions in this study yet.</b> Without a model this is a manual annotation tool. "
                    "Add the bundled demo models to try the model's predictions, or a model package trained "
                    "elsewhere.")
        self.heading.setText(text + (" A retrain is running." if busy else ""))
        self.rollback_button.setText(f"Roll back to {previous}" if previous else "Roll back to the previous version")
        self.rollback_button.setToolTip("" if previous else "No earlier version was active: nothing to roll back to")
        if active in self._ids:
            self.table.selectRow(self._ids.index(active))
        self._update_buttons()

    def set_adding(self, text: str | None) -> None:
        """Adding models (``text`` says what) keeps both add buttons off until it ends (None)."""
        self.enable_adding(text is None)
        if text is not None:
            self.show_status(text)

    def enable_adding(self, enabled: bool) -> None:
        for button in (self.add_demo_button, self.add_package_button):
            button.setEnabled(enabled)

    def show_status(self, text: str, *, problem: bool = False) -> None:
        """What the last action did, in plain words, under the table."""
        self.status.setText(text)
        self.status.setStyleSheet("color: #B00020" if problem else "color: #1B5E20")

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
        self.rollback_button.setEnabled(self._previous is not None)

    def _activate(self) -> None:
        chosen = self.selected_id()
        if chosen is not None:
            self.activateRequested.emit(chosen)

    def _ask_package(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(
            self, "Add a model package: choose the folder of a model set or of its packages",
            QtCore.QStandardPaths.writableLocation(QtCore.QStandardPaths.StandardLocation.HomeLocation))
        if folder:
            self.addPackageRequested.emit(folder)

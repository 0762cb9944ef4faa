"""An edited consensus result: its diseases and level here, its box on the image (drag to move or resize, or draw a
new one). Nothing is recorded until Record is pressed: a conflict is never decided by starting an edit."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from core.annotations.model import CLASS_CODES, DISEASE_NAMES, LEVELS, NORMAL, Vertebra


class ResultEditor(QtWidgets.QGroupBox):
    diseaseToggled = QtCore.Signal(str)  # a code; NORMAL clears the diseases
    levelChosen = QtCore.Signal(object)  # str or None
    recordRequested = QtCore.Signal()
    noVertebraRequested = QtCore.Signal()
    cancelRequested = QtCore.Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__("Edited result (drag its box on the image)", parent)
        self.checks: dict[str, QtWidgets.QCheckBox] = {}
        grid = QtWidgets.QGridLayout()
        for i, code in enumerate(CLASS_CODES):
            box = QtWidgets.QCheckBox(code)
            box.setToolTip(DISEASE_NAMES[code])
            box.clicked.connect(lambda checked=False, code=code: self.diseaseToggled.emit(code))
            self.checks[code] = box
            grid.addWidget(box, i // 3, i % 3)
        self.level = QtWidgets.QComboBox()
        self.level.addItem("unknown", None)
        for level in LEVELS:
            self.level.addItem(level, level)
        self.level.activated.connect(lambda index: self.levelChosen.emit(self.level.itemData(index)))
        self.record = QtWidgets.QPushButton("Record edited result (Enter)")
        self.no_vertebra = QtWidgets.QPushButton("No vertebra here")
        self.no_vertebra.setToolTip("Record that there is no vertebra at this place (a stray box is dropped)")
        self.cancel = QtWidgets.QPushButton("Cancel (Esc)")
        self.record.clicked.connect(self.recordRequested)
        self.no_vertebra.clicked.connect(self.noVertebraRequested)
        self.cancel.clicked.connect(self.cancelRequested)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(grid)
        form = QtWidgets.QFormLayout()
        form.addRow("Level", self.level)
        layout.addLayout(form)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.record)
        row.addWidget(self.no_vertebra)
        row.addWidget(self.cancel)
        layout.addLayout(row)

    def show_draft(self, draft: Vertebra | None) -> None:
        self.setVisible(draft is not None)
        if draft is None:
            return
        codes = set(draft.label.split("+")) if draft.diagnosed else set()
        for code, box in self.checks.items():
            box.setChecked(code in codes or (code == NORMAL and not draft.diseases))
        index = self.level.findData(draft.level) if draft.level else 0
        self.level.setCurrentIndex(max(0, index))

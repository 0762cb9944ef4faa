"""Search and filters above the case list: case id, has disease X, low confidence, readers disagree, status (one,
or every slice where the model found none or too few)."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from core.annotations.model import CLASS_CODES, DISEASE_NAMES
from core.review.filters import SliceFilter
from core.review.status import SHORTFALL_STATUSES, SliceStatus

SHORTFALL_FILTER = "Model found none or too few"


class FilterBar(QtWidgets.QWidget):
    filterChanged = QtCore.Signal(object)  # SliceFilter

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.search = QtWidgets.QLineEdit(placeholderText="Search case id (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        self.disease = QtWidgets.QComboBox()
        self.disease.addItem("Any finding", None)
        for code in CLASS_CODES:
            self.disease.addItem(f"Has {code}", code)
            self.disease.setItemData(self.disease.count() - 1, DISEASE_NAMES[code], QtCore.Qt.ItemDataRole.ToolTipRole)
        self.status = QtWidgets.QComboBox()
        self.status.addItem("Any status", None)
        for status in SliceStatus:
            self.status.addItem(status.value.capitalize(), frozenset({status}))
        self.status.addItem(SHORTFALL_FILTER, SHORTFALL_STATUSES)
        self.status.setItemData(self.status.count() - 1, "Slices where the model found no vertebrae, or clearly too "
                                "few, and you have not started", QtCore.Qt.ItemDataRole.ToolTipRole)
        self.low_confidence = QtWidgets.QCheckBox("Low confidence")
        self.low_confidence.setToolTip("The model was unsure about a box on the slice")
        self.disagreement = QtWidgets.QCheckBox("Readers disagree")
        self.disagreement.setToolTip("Readers' boxes differ in number or label on the slice")
        self._setup_layout()
        self.search.textChanged.connect(self._changed)
        for combo in (self.disease, self.status):
            combo.currentIndexChanged.connect(self._changed)
        for box in (self.low_confidence, self.disagreement):
            box.toggled.connect(self._changed)

    def _setup_layout(self) -> None:
        grid = QtWidgets.QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(self.search, 0, 0, 1, 2)
        grid.addWidget(self.disease, 1, 0)
        grid.addWidget(self.status, 1, 1)
        grid.addWidget(self.low_confidence, 2, 0)
        grid.addWidget(self.disagreement, 2, 1)

    def current(self) -> SliceFilter:
        return SliceFilter(
            text=self.search.text(),
            disease=self.disease.currentData(),
            low_confidence=self.low_confidence.isChecked(),
            disagreement=self.disagreement.isChecked(),
            statuses=self.status.currentData(),
        )

    def _changed(self, *args) -> None:
        self.filterChanged.emit(self.current())

"""Search and filters above the case list: case id, has disease X, low confidence, readers disagree, status (one,
or every slice where the model found none or too few).

"Readers disagree" finds the slices with an open disagreement (:mod:`core.consensus.counts`, the definition the
consensus mode counts). While blinding hides the other readers of some cases from you, it cannot find them there, and
says so under the filters."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from core.annotations.model import CLASS_CODES, DISEASE_NAMES
from core.review.filters import SliceFilter
from core.review.status import SHORTFALL_STATUSES, SliceStatus

SHORTFALL_FILTER = "Model found none or too few"
DISAGREEMENT_TIP = ("Slices with an open disagreement: the readers label a vertebra differently, only some drew it, "
                    "or they drew its box differently, and the consensus has not decided it yet (the ones the "
                    "consensus mode steps through)")


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
        self.low_confidence.setToolTip("Slices you have not finished where the model was unsure about a box: a "
                                       "disease call that went either way by a little (odds within a factor of 2 "
                                       "of the model's threshold for it), a detector score below 0.80, or a "
                                       "disease called on a body at the image's edge (it may be cut off)")
        self.disagreement = QtWidgets.QCheckBox("Readers disagree")
        self.disagreement.setToolTip(DISAGREEMENT_TIP)
        self.blinding_note = QtWidgets.QLabel()
        self.blinding_note.setWordWrap(True)
        self.blinding_note.setStyleSheet("color: #D55E00")
        self.blinding_note.hide()
        self._blinded_cases = 0
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
        grid.addWidget(self.blinding_note, 3, 0, 1, 2)

    def set_blinded_cases(self, cases: int) -> None:
        """How many cases blinding hides the other readers of (their disagreements cannot be found there)."""
        self._blinded_cases = cases
        self._show_blinding_note()

    def _show_blinding_note(self) -> None:
        cases = self._blinded_cases
        hidden = (f"Blinding hides the other readers in {cases} case{'s' if cases != 1 else ''} until you mark "
                  "each done (Ctrl+D), so their disagreements are not shown there; the consensus mode "
                  "(Ctrl+Shift+C) lists them all.") if cases else ""
        self.disagreement.setToolTip(DISAGREEMENT_TIP + (f"\n\n{hidden}" if hidden else ""))
        self.blinding_note.setText(hidden)
        self.blinding_note.setVisible(bool(hidden) and self.disagreement.isChecked())

    def current(self) -> SliceFilter:
        return SliceFilter(
            text=self.search.text(),
            disease=self.disease.currentData(),
            low_confidence=self.low_confidence.isChecked(),
            disagreement=self.disagreement.isChecked(),
            statuses=self.status.currentData(),
        )

    def _changed(self, *args) -> None:
        self._show_blinding_note()
        self.filterChanged.emit(self.current())

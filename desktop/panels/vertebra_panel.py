"""The selected box: diseases as checkboxes (keys 1-5, 0 for NORMAL), its level, where it came from, its Genant grade
when one was imported (read-only), and the model's probabilities with the calls that were close (what makes a box
unsure, :mod:`core.review.confidence`); buttons for delete, accept the model's result, and reviewed-and-next."""

from __future__ import annotations

from collections.abc import Mapping

from PySide6 import QtCore, QtWidgets

from core.annotations.model import (
    CLASS_CODES,
    DISEASE_NAMES,
    DISEASES,
    GENANT_NAMES,
    LEVELS,
    MODEL_SOURCE,
    NORMAL,
    Disease,
    Vertebra,
)
from core.review.confidence import DEFAULT_THRESHOLD, UNSURE_SCORE, ModelCall, close_calls, cut_call, low_score

DISEASE_KEYS = {d: str(i) for i, d in enumerate(DISEASES, start=1)}


class VertebraPanel(QtWidgets.QGroupBox):
    diseaseToggled = QtCore.Signal(object)  # Disease
    normalChosen = QtCore.Signal()
    levelChosen = QtCore.Signal(object)  # str or None
    deleteRequested = QtCore.Signal()
    acceptRequested = QtCore.Signal()
    reviewedRequested = QtCore.Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.heading = QtWidgets.QLabel("No box selected: click one, press Tab, or drag on the image to draw one.")
        self.heading.setWordWrap(True)
        self.checks: dict[str, QtWidgets.QCheckBox] = {}
        for code in CLASS_CODES:
            key = DISEASE_KEYS.get(Disease(code)) if code != NORMAL else "0"
            box = QtWidgets.QCheckBox(f"{code}  ({key})")
            box.setToolTip(f"{DISEASE_NAMES[code]} — key {key}")
            box.clicked.connect(lambda checked, code=code: self._on_check(code))
            self.checks[code] = box
        self.level = QtWidgets.QComboBox()
        self.level.addItem("unknown", None)
        for level in LEVELS:
            self.level.addItem(level, level)
        self.level.setToolTip("The vertebral level ([ and ] step it)")
        self.level.activated.connect(lambda index: self.levelChosen.emit(self.level.itemData(index)))
        self.details = QtWidgets.QLabel()
        self.details.setWordWrap(True)
        self.details.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.delete_button = QtWidgets.QPushButton("Delete box (Del)")
        self.accept_button = QtWidgets.QPushButton("Accept model (A)")
        self.reviewed_button = QtWidgets.QPushButton("Reviewed, next (Enter)")
        self.delete_button.clicked.connect(self.deleteRequested)
        self.accept_button.clicked.connect(self.acceptRequested)
        self.reviewed_button.clicked.connect(self.reviewedRequested)
        self._setup_layout()
        self.show_vertebra(None)

    def _setup_layout(self) -> None:
        # The texts change with every selection; they must not move the image: they wrap within the panel's width
        # (which the checkboxes and buttons set) and have room for the longest of them.
        lines = self.fontMetrics().lineSpacing()
        for label, rows in ((self.heading, 2), (self.details, 7)):  # details: a close call and a cut body, a line each
            label.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Fixed)
            label.setFixedHeight(rows * lines + 4)
            label.setAlignment(QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignTop)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.heading)
        grid = QtWidgets.QGridLayout()
        for i, box in enumerate(self.checks.values()):
            grid.addWidget(box, i // 2, i % 2)
        layout.addLayout(grid)
        form = QtWidgets.QFormLayout()
        form.addRow("Level", self.level)
        layout.addLayout(form)
        layout.addWidget(self.details)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(self.delete_button)
        buttons.addWidget(self.accept_button)
        layout.addLayout(buttons)
        layout.addWidget(self.reviewed_button)
        layout.addStretch(1)

    def _on_check(self, code: str) -> None:
        if code == NORMAL:
            self.normalChosen.emit()
        else:
            self.diseaseToggled.emit(Disease(code))

    def show_vertebra(self, vertebra: Vertebra | None, index: int = 0, count: int = 0, *,
                      editable: bool = True, note: str = "", call: ModelCall | None = None) -> None:
        """``index``: the box's place from the top of the spine; ``note`` says whose box it is when not the
        reader's; ``call``: what the model's result says, to name its close calls (against the thresholds it called
        with) and a disease called on a body at the image's edge."""
        selected = vertebra is not None
        for code, box in self.checks.items():
            box.setEnabled(selected and editable)
            box.setChecked(selected and (code in vertebra.label.split("+") if vertebra.diagnosed else False))
        self.level.setEnabled(selected and editable)
        self.delete_button.setEnabled(selected and editable)
        if vertebra is None:
            self.heading.setText("No box selected: click one, press Tab, or drag on the image to draw one.")
            self.details.clear()
            self.level.setCurrentIndex(0)
            return
        self.heading.setText(f"Box {index + 1} of {count} from the top: {vertebra.label}"
                             + ("" if vertebra.diagnosed else " (not diagnosed yet)") + (f" ({note})" if note else ""))
        self.level.setCurrentIndex(max(0, self.level.findData(vertebra.level)) if vertebra.level else 0)
        lines = [f"source: {vertebra.source}"]
        if vertebra.genant is not None:
            lines.append(f"Genant grade {vertebra.genant} ({GENANT_NAMES[vertebra.genant]}, from the import)")
        if vertebra.score is not None:
            lines.append(f"detector score: {vertebra.score:.2f}" + (f" (unsure: below {UNSURE_SCORE:.2f})"
                                                                      if low_score(vertebra) else ""))
        if vertebra.probabilities:
            lines.append("model: " + "  ".join(f"{c} {vertebra.probabilities[c]:.2f}" for c in CLASS_CODES
                                               if c in vertebra.probabilities))
            thresholds = call.thresholds if call is not None else None
            close = close_calls(vertebra, thresholds) if vertebra.source == MODEL_SOURCE else []
            if close:
                lines.append(self._close_calls(vertebra, close, thresholds))
        box = vertebra.box
        cut = cut_call(vertebra, call.image_size if call is not None else None)
        lines.append(f"box: {box.x1:.0f}, {box.y1:.0f} – {box.x2:.0f}, {box.y2:.0f} px"
                     + (" (unsure: at the image's edge, may be cut off)" if cut else ""))
        self.details.setText("\n".join(lines))

    @staticmethod
    def _close_calls(vertebra: Vertebra, codes: list[str], thresholds: Mapping[str, float] | None) -> str:
        """``close call: OVCF 0.36 called (from 0.26)``; against 0.5 where the result recorded no thresholds."""
        def call(code: str) -> str:
            called = "called" if Disease(code) in vertebra.diseases else "not called"
            known = (thresholds or {}).get(code)
            return f"{code} {vertebra.probabilities[code]:.2f} {called}" + (
                f" (from {known:.2f})" if known is not None else "")
        if thresholds is None:
            return (f"close call against {DEFAULT_THRESHOLD:.2f} (no thresholds recorded): "
                    + "; ".join(map(call, codes)))
        return "close call: " + "; ".join(map(call, codes))

    def set_actions_enabled(self, *, accept: bool, review: bool) -> None:
        self.accept_button.setEnabled(accept)
        self.reviewed_button.setEnabled(review)

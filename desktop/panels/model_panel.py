"""The model: which one is active (or none), run it on this slice or this case with progress and Cancel, and
which boxes to show (mine, the model's, both, or the consensus)."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from core.progress import Progress
from core.review.models import NO_MODEL

OVERLAY_MINE, OVERLAY_MODEL, OVERLAY_BOTH, OVERLAY_CONSENSUS = "mine", "model", "both", "consensus"
OVERLAY_READERS = "readers"
OVERLAY_MODES = (OVERLAY_BOTH, OVERLAY_MINE, OVERLAY_MODEL, OVERLAY_CONSENSUS, OVERLAY_READERS)
_OVERLAY_TEXT = {
    OVERLAY_BOTH: "Mine + model",
    OVERLAY_MINE: "Mine",
    OVERLAY_MODEL: "Model",
    OVERLAY_CONSENSUS: "Consensus",
    OVERLAY_READERS: "Mine + other readers",
}


class ModelPanel(QtWidgets.QGroupBox):
    runSliceRequested = QtCore.Signal()
    runCaseRequested = QtCore.Signal()
    cancelRequested = QtCore.Signal()
    overlayChanged = QtCore.Signal(str)
    retrainRequested = QtCore.Signal()
    versionsRequested = QtCore.Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.description = QtWidgets.QLabel("No study open.")
        self.description.setWordWrap(True)
        self.add_hint = QtWidgets.QLabel("To add a model: Versions… › Add the bundled demo models (not for clinical "
                                         "use), or Add a model package…")
        self.add_hint.setWordWrap(True)
        self.add_hint.setStyleSheet("color: #555555")
        self.add_hint.setVisible(False)
        self.run_slice = QtWidgets.QPushButton("Run on slice")
        self.run_case = QtWidgets.QPushButton("Run on case")
        self.cancel = QtWidgets.QPushButton("Cancel")
        self.retrain = QtWidgets.QPushButton("Retrain…")
        self.retrain.setToolTip("Train a new model version from the reviewed and agreed slices (Ctrl+Shift+T)")
        self.versions = QtWidgets.QPushButton("Versions…")
        self.versions.setToolTip("Every model version with its metrics; activate one, roll back, or add the bundled "
                                 "demo models or a model package")
        self.progress = QtWidgets.QProgressBar()
        self.progress.setTextVisible(True)
        self.progress_text = QtWidgets.QLabel()
        self.overlay = QtWidgets.QComboBox()
        for mode in OVERLAY_MODES:
            self.overlay.addItem(_OVERLAY_TEXT[mode], mode)
        self.overlay.setToolTip("Which boxes to show (M cycles)")
        self._setup_layout()
        self.run_slice.clicked.connect(self.runSliceRequested)
        self.run_case.clicked.connect(self.runCaseRequested)
        self.cancel.clicked.connect(self.cancelRequested)
        self.retrain.clicked.connect(self.retrainRequested)
        self.versions.clicked.connect(self.versionsRequested)
        self.overlay.currentIndexChanged.connect(lambda i: self.overlayChanged.emit(self.overlay.itemData(i)))
        self.set_state("none", "No study open.")

    def _setup_layout(self) -> None:
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.description)
        layout.addWidget(self.add_hint)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.run_slice)
        row.addWidget(self.run_case)
        layout.addLayout(row)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.progress, 1)
        row.addWidget(self.cancel)
        layout.addLayout(row)
        layout.addWidget(self.progress_text)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.retrain)
        row.addWidget(self.versions)
        layout.addLayout(row)
        form = QtWidgets.QFormLayout()
        form.addRow("Show", self.overlay)
        layout.addLayout(form)

    def _fit_description(self) -> None:
        """Keep room for every line of the wrapped description: a long model name, its settings or a failure's
        reason would otherwise be cut off under the buttons when the dock is short."""
        width = self.description.width()
        if width > 0:
            self.description.setMinimumHeight(0)  # QLabel's heightForWidth never answers less than its minimum
            self.description.setMinimumHeight(self.description.heightForWidth(width))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_description()

    def set_state(self, state: str, message: str) -> None:
        """``none``, ``loading``, ``ready``, ``running`` or ``failed``, with a sentence for people."""
        self.description.setText(message)
        self._fit_description()
        self.add_hint.setVisible(state == "none" and message == NO_MODEL)
        self.description.setStyleSheet("color: #D55E00" if state == "failed" else "")
        self.run_slice.setEnabled(state == "ready")
        self.run_case.setEnabled(state == "ready")
        self.cancel.setEnabled(state == "running")
        self.progress.setVisible(state == "running")
        if state != "running":
            self.progress.reset()
            self.progress_text.clear()

    def show_progress(self, progress: Progress) -> None:
        self.progress.setMaximum(max(1, progress.total))
        self.progress.setValue(progress.step)
        self.progress_text.setText(progress.message)

    def set_overlay(self, mode: str) -> None:
        index = self.overlay.findData(mode)
        if index >= 0:
            self.overlay.setCurrentIndex(index)

    def overlay_mode(self) -> str:
        return self.overlay.currentData()

"""Before a retrain: what it would learn from (slices and boxes per class, what is new since the active model), and
the choices: detector, classifier or both; fine-tune or from scratch; epochs; the gate's margin. The device it
would train on is shown (CUDA with mixed precision when there is a GPU, else the CPU)."""

from __future__ import annotations

from html import escape
from typing import Any

from PySide6 import QtWidgets

from core.training.retrain_plan import RetrainPlan

COMPONENTS = (("both", "Detector and classifier"), ("detector", "Detector only"), ("classifier", "Classifier only"))


def _s(count: int, word: str) -> str:
    return word if count == 1 else word + "s"


def summary_html(plan: RetrainPlan) -> str:
    summary = plan.summary
    since = f"since the active model <b>{escape(plan.active)}</b>" if plan.active else "(no active model yet)"
    rows = "".join(f"<tr><td>{escape(code)}</td><td align='right'>{count}</td></tr>"
                   for code, count in summary.boxes_per_class.items())
    held_out = len(summary.validation_cases)
    new = "slice is" if summary.new_slices == 1 else "slices are"
    return (
        f"<p><b>{summary.slices}</b> reviewed or agreed {_s(summary.slices, 'slice')} from <b>{summary.cases}</b> "
        f"{_s(summary.cases, 'case')}: {summary.training_slices} for training, {summary.validation_slices} for "
        f"validation ({held_out} held-out {_s(held_out, 'case')}, the same split every time).</p>"
        f"<p><b>{summary.new_slices}</b> {new} new or changed {since}.</p>"
        "<table cellspacing='0' cellpadding='2' border='1'><tr><th>class</th><th>boxes</th></tr>"
        f"{rows}</table>"
    )


class RetrainDialog(QtWidgets.QDialog):
    """``options()`` gives the RetrainOptions fields chosen (after ``exec()`` returned Accepted)."""

    def __init__(self, plan: RetrainPlan, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.plan = plan
        self.setWindowTitle("Retrain the models")
        self.summary = QtWidgets.QLabel(summary_html(plan))
        self.summary.setWordWrap(True)
        self.components = QtWidgets.QComboBox()
        for key, text in COMPONENTS:
            self.components.addItem(text, key)
        self.fine_tune = QtWidgets.QRadioButton(
            f"Fine-tune the active model ({plan.active})" if plan.active else "Fine-tune (no active model)")
        self.from_scratch = QtWidgets.QRadioButton("Train from scratch")
        self.epochs = QtWidgets.QSpinBox()
        self.epochs.setRange(0, 500)
        self.epochs.setSpecialValueText(
            f"preset (detector {plan.epochs.get('detector')}, classifier {plan.epochs.get('classifier')})")
        self.margin = QtWidgets.QDoubleSpinBox()
        self.margin.setRange(0.0, 1.0)
        self.margin.setDecimals(3)
        self.margin.setSingleStep(0.005)
        self.margin.setValue(0.01)
        self.margin.setToolTip("The new model is activated only if its validation score is not below the active "
                               "model's by more than this (detector: AP50; classifier: mean AUC)")
        self.device = QtWidgets.QLabel(plan.device + ("" if plan.cuda else "  (no CUDA GPU found)"))
        self.problem = QtWidgets.QLabel()
        self.problem.setStyleSheet("color: #D55E00")
        self.problem.setWordWrap(True)
        self.buttons = QtWidgets.QDialogButtonBox()
        self.start_button = self.buttons.addButton("Start retraining", QtWidgets.QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.addButton(QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self._setup_layout()
        self._setup_choices()

    def _setup_layout(self) -> None:
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.summary)
        form = QtWidgets.QFormLayout()
        form.addRow("Train", self.components)
        start = QtWidgets.QVBoxLayout()
        start.addWidget(self.fine_tune)
        start.addWidget(self.from_scratch)
        form.addRow("Start from", start)
        form.addRow("Epochs", self.epochs)
        form.addRow("Gate margin", self.margin)
        form.addRow("Device", self.device)
        layout.addLayout(form)
        layout.addWidget(self.problem)
        layout.addWidget(self.buttons)

    def _setup_choices(self) -> None:
        plan = self.plan
        self.fine_tune.setEnabled(plan.active is not None)
        (self.fine_tune if plan.active else self.from_scratch).setChecked(True)
        if plan.active is None:  # a classifier alone needs an active detector to pair with
            self.components.model().item(self.components.findData("classifier")).setEnabled(False)
        self.components.currentIndexChanged.connect(self._check)
        self.fine_tune.toggled.connect(self._check)
        self._check()

    def _check(self) -> None:
        problem = ""
        if not self.plan.trainable:
            problem = ("There is nothing to train on yet: review some slices (Enter marks a slice reviewed) or agree "
                       "a consensus first.")
        elif (self.components.currentData() in ("both", "classifier") and self.fine_tune.isChecked()
              and self.plan.active is not None and not self.plan.active_has_classifier):
            problem = "The active model has no classifier to fine-tune: its classifier is trained from scratch."
        self.problem.setText(problem)
        self.start_button.setEnabled(self.plan.trainable)

    def options(self) -> dict[str, Any]:
        component = self.components.currentData()
        return {
            "detector": component in ("both", "detector"),
            "classifier": component in ("both", "classifier"),
            "from_scratch": self.from_scratch.isChecked(),
            "epochs": self.epochs.value() or None,
            "margin": float(self.margin.value()),
        }

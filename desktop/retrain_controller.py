"""One-click retrain in the app: the summary dialog, the run in a child process with its progress and curves, Cancel,
the outcome, and the model versions (activate, roll back). After a model is activated (by a retrain's gate, by hand,
or by a rollback), ``modelSwitched(ModelLink)`` tells the review workspace, which loads the model and refreshes the
predictions of the unreviewed slices in the background."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6 import QtCore, QtWidgets

from core.errors import VertebraReviewError
from core.models.registry import Registry
from core.review.models import peek_active_model
from core.study.layout import Study
from core.training.retrain_plan import RetrainPlan, plan_retrain
from core.training.retrain_progress import RetrainTracker
from desktop.dialogs.messages import error_text, show_error, show_info
from desktop.dialogs.model_versions_dialog import ModelVersionsDialog
from desktop.dialogs.retrain_dialog import RetrainDialog, summary_html
from desktop.panels.retrain_panel import RetrainPanel
from desktop.retrain_runner import RetrainRunner
from desktop.workers import run_in_background

BUSY = "A retrain is already running: wait for it to finish, or cancel it in the Retrain panel."


def ask_options(parent: QtWidgets.QWidget, plan: RetrainPlan) -> dict[str, Any] | None:
    dialog = RetrainDialog(plan, parent)
    return dialog.options() if dialog.exec() == QtWidgets.QDialog.DialogCode.Accepted else None


class RetrainController(QtCore.QObject):
    message = QtCore.Signal(str)
    busyChanged = QtCore.Signal(bool)
    modelSwitched = QtCore.Signal(object)  # ModelLink
    planReady = QtCore.Signal(object)  # RetrainPlan (before the dialog)

    def __init__(self, window: QtWidgets.QWidget, panel: RetrainPanel, runner: RetrainRunner,
                 study: Callable[[], Study | None], show_panel: Callable[[], None],
                 parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.window, self.panel, self.runner = window, panel, runner
        self._study, self._show_panel = study, show_panel
        #: Options added to the dialog's (tests: batch size, precision); the dialog's own choices come first.
        self.extra_options: dict[str, Any] = {}
        #: Asks for the options; replaced in tests. Returns None when cancelled.
        self.ask_options: Callable[[QtWidgets.QWidget, RetrainPlan], dict[str, Any] | None] = ask_options
        self.tracker: RetrainTracker | None = None
        self.last_result: dict[str, Any] | None = None
        self.versions_dialog: ModelVersionsDialog | None = None
        self._planning = False
        runner.progressed.connect(self._on_progress)
        runner.succeeded.connect(self._on_succeeded)
        runner.failed.connect(self._on_failed)
        runner.cancelled.connect(self._on_cancelled)
        runner.finished.connect(lambda: self._set_busy(False))
        panel.cancelRequested.connect(self.cancel)
        panel.versionsRequested.connect(self.show_versions)

    @property
    def busy(self) -> bool:
        return self.runner.busy

    def _set_busy(self, busy: bool) -> None:
        self.busyChanged.emit(busy)
        if self.versions_dialog is not None and self.versions_dialog.isVisible():
            self._fill_versions()

    # -- starting ---------------------------------------------------------------------------------------------------
    def ask_retrain(self) -> None:
        """The Retrain action: summarise the training data (in the background), ask, then start."""
        study = self._study()
        if study is None:
            self.message.emit("Open a study first: a retrain learns from its reviewed and agreed slices")
        elif self.runner.busy:
            show_info(self.window, "Retrain", BUSY)
        elif not self._planning:
            self._planning = True
            self.message.emit("Gathering the reviewed and agreed slices …")
            run_in_background(plan_retrain, study.root, on_result=self._on_plan,
                              on_error=lambda error: show_error(self.window, "Retrain not started", error),
                              on_finished=self._planned, owner=self)

    def _planned(self) -> None:
        self._planning = False

    def _on_plan(self, plan: RetrainPlan) -> None:
        study = self._study()
        if study is None or study.root != plan.study_root:
            return
        self.planReady.emit(plan)
        options = self.ask_options(self.window, plan)
        if options is not None:
            self.start(plan, options)

    def start(self, plan: RetrainPlan, options: dict[str, Any]) -> bool:
        """Start the child process (False, with the reason shown, when a retrain is running)."""
        if self.runner.busy:
            show_info(self.window, "Retrain", BUSY)
            return False
        full = {**self.extra_options, **options}
        components = [c for c in ("detector", "classifier") if full.get(c, True)]
        epochs = {c: full.get("epochs") or plan.epochs.get(c, 1) for c in components}
        self.tracker = RetrainTracker(components, epochs)
        self.last_result = None
        self.runner.start(plan.study_root, full)
        start = "from scratch" if full.get("from_scratch") or plan.active is None else f"fine-tuning {plan.active}"
        self.panel.start(f"Retraining the {' and the '.join(components)} on {plan.device}, {start}; "
                         f"gate margin {full.get('margin', 0.01):g}. You can go on reviewing meanwhile.",
                         summary_html(plan))
        self._show_panel()
        self._set_busy(True)
        self.message.emit("Retraining in the background …")
        return True

    def cancel(self) -> None:
        if self.runner.busy:
            self.runner.cancel()
            self.panel.status.setText("Cancelling: stopping the training process …")

    # -- outcome ----------------------------------------------------------------------------------------------------
    def _on_progress(self, payload: dict[str, Any]) -> None:
        if self.tracker is not None:
            self.tracker.update(payload)
            self.panel.show_progress(self.tracker)

    def _on_succeeded(self, result: dict[str, Any]) -> None:
        self.last_result = result
        verdict = "activated" if result.get("activated") else "kept as a candidate"
        self.panel.finish(f"Finished: {result.get('model_id')} {verdict}.", result=result)
        self.message.emit(f"Retrain finished: {result.get('model_id')} {verdict}")
        study = self._study()
        if result.get("activated") and study is not None and study.root == self.runner.study_root:
            self._switched()
        elif self.versions_dialog is not None and self.versions_dialog.isVisible():
            self._fill_versions()

    def _on_failed(self, text: str) -> None:
        self.panel.finish(f"The retrain failed: {text}", failed=True)
        show_error(self.window, "Retrain failed", text, "Nothing was activated: the active model is unchanged.")

    def _on_cancelled(self) -> None:
        self.panel.finish("Cancelled: the training process has ended; nothing was activated and the active model "
                          "is unchanged.")
        self.message.emit("Retrain cancelled")

    # -- versions ---------------------------------------------------------------------------------------------------
    def show_versions(self) -> None:
        if self._study() is None:
            self.message.emit("Open a study first")
            return
        if self.versions_dialog is None:
            self.versions_dialog = ModelVersionsDialog(self.window)
            self.versions_dialog.activateRequested.connect(self.activate)
            self.versions_dialog.rollbackRequested.connect(self.rollback)
        self._fill_versions()
        self.versions_dialog.show()
        self.versions_dialog.raise_()

    def _fill_versions(self) -> None:
        study = self._study()
        if study is None or self.versions_dialog is None:
            return
        registry = Registry(study.root / "models")
        try:
            active = registry.active_id()
        except VertebraReviewError as error:
            active = None
            self.message.emit(error_text(error))
        newest = self.last_result.get("model_id") if self.last_result else None
        self.versions_dialog.set_versions(registry.versions(), active, newest=newest, busy=self.runner.busy)

    def activate(self, model_id: str) -> None:
        self._registry_change(lambda registry: registry.activate(model_id), f"Activated {model_id}")

    def rollback(self) -> None:
        self._registry_change(lambda registry: registry.rollback(), "Rolled back to {id}")

    def _registry_change(self, change: Callable[[Registry], Any], text: str) -> None:
        study = self._study()
        if study is None:
            return
        try:
            found = change(Registry(study.root / "models"))
        except VertebraReviewError as error:
            show_error(self.window, "Model not changed", error, "The active model is unchanged.")
            return
        self.message.emit(text.format(id=found.model_id))
        self._switched()

    def _switched(self) -> None:
        study = self._study()
        if study is None:
            return
        self.modelSwitched.emit(peek_active_model(study))
        if self.versions_dialog is not None and self.versions_dialog.isVisible():
            self._fill_versions()

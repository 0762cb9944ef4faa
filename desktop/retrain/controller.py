"""One-click retrain in the app: the summary dialog, the run in a child process with its progress and curves, Cancel,
the outcome, and the model versions (activate, roll back, add the bundled demo models or a model package). After a
model is activated (by a retrain's gate, by hand, by a rollback, or by adding one to a study that had none),
``modelSwitched(ModelLink)`` tells the review workspace, which loads the model and refreshes the predictions of the
unreviewed slices in the background."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6 import QtCore, QtWidgets

from core.errors import VertebraReviewError
from core.models.adding import AddedModels, add_models, bundled_demo_models
from core.models.registry import DEMO_NOTICE, ModelSet, Registry
from core.review.models import peek_active_model
from core.study.layout import Study
from core.training.retrain_plan import RetrainPlan, plan_retrain
from core.training.retrain_progress import RetrainTracker
from desktop.dialogs.messages import confirm, error_text, show_error, show_info
from desktop.dialogs.model_versions_dialog import ModelVersionsDialog, version_words
from desktop.dialogs.retrain_dialog import RetrainDialog, summary_html
from desktop.panels.retrain_panel import RetrainPanel
from desktop.retrain.runner import RetrainRunner
from desktop.workers import run_in_background

BUSY = "A retrain is already running: wait for it to finish, or cancel it in the Retrain panel."


def plain_error(error: BaseException) -> str:
    """An error in plain words: its message, without the internal path it concerns (``models/active`` …)."""
    if isinstance(error, VertebraReviewError):
        text = error.message.strip().rstrip(".")
        return text[:1].upper() + text[1:] + "."
    return error_text(error)


def add_failure_text(source: Path, error: BaseException) -> str:
    """Why the models in ``source`` were not added: the package's fault (naming the file in it), or the study's."""
    where = Path(error.path) if isinstance(error, VertebraReviewError) and error.path else None
    reason = plain_error(error)
    if where is not None and where.resolve().is_relative_to(source.resolve()):
        text = f"{source} is not a model package this app can use. {reason}"
        inner = where.resolve().relative_to(source.resolve())
        return text + (f"\n\nThe problem is in {inner}." if inner.parts else "")
    return f"The models in {source} could not be added to this study. {reason}"


def ask_options(parent: QtWidgets.QWidget, plan: RetrainPlan) -> dict[str, Any] | None:
    dialog = RetrainDialog(plan, parent)
    return dialog.options() if dialog.exec() == QtWidgets.QDialog.DialogCode.Accepted else None


class RetrainController(QtCore.QObject):
    message = QtCore.Signal(str)
    busyChanged = QtCore.Signal(bool)
    modelSwitched = QtCore.Signal(object)  # ModelLink
    modelsAdded = QtCore.Signal(object)  # AddedModels
    addFailed = QtCore.Signal(str)  # the message shown
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
        self._adding = False
        self._added: tuple[Path, str] | None = None  # the study and version added last (highlighted)
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
                         summary_html(plan), epochs=max(self.tracker.epochs.values()))
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
        self._added = None
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
            self.versions_dialog.addDemoRequested.connect(self.add_demo_models)
            self.versions_dialog.addPackageRequested.connect(self.add_package)
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
        trained = self.last_result.get("model_id") if self.last_result else None
        added = self._added[1] if self._added and self._added[0] == study.root else None
        newest, note = (added, "just added") if added else (trained, "just trained")
        self.versions_dialog.set_versions(registry.versions(), active, newest=newest, newest_note=note,
                                          busy=self.runner.busy, previous=registry.previous_id())
        self.versions_dialog.enable_adding(not self._adding)

    def activate(self, model_id: str) -> None:
        self._registry_change(lambda registry: registry.activate(model_id),
                              lambda found: f"Model {version_words(found).removeprefix('model ')} is now the active "
                                            "model.")

    def rollback(self) -> None:
        self._registry_change(lambda registry: registry.rollback(),
                              lambda found: f"Rolled back to {version_words(found)}.")

    def _registry_change(self, change: Callable[[Registry], ModelSet], words: Callable[[ModelSet], str]) -> None:
        study = self._study()
        if study is None:
            return
        try:
            found = change(Registry(study.root / "models"))
        except VertebraReviewError as error:
            show_error(self.versions_dialog or self.window, "Model not changed", plain_error(error),
                       "The active model is unchanged.")
            return
        text = words(found)
        self.message.emit(text)
        if self.versions_dialog is not None:
            self.versions_dialog.show_status(text)
        self._switched()

    # -- adding models ----------------------------------------------------------------------------------------------
    def add_demo_models(self) -> None:
        """Add the bundled demo models (trained on synthetic phantoms) as a new version of the study."""
        self.add_package(bundled_demo_models(), what="the bundled demo models")

    def add_package(self, folder: str | Path, *, what: str | None = None) -> None:
        """Check the models in ``folder`` and copy them into the study as a new version (in the background); then
        activate it when the study has no active model, else offer to."""
        study = self._study()
        if study is None:
            self.message.emit("Open a study first")
            return
        if self._adding:
            return
        source = Path(folder)
        self._adding = True
        busy = f"Checking {what or source} and copying {'them' if what else 'it'} into this study …"
        self.message.emit(busy)
        if self.versions_dialog is not None:
            self.versions_dialog.set_adding(busy)
        root = study.root
        run_in_background(add_models, root / "models", source,
                          on_result=lambda added: self._on_added(root, source, added, what),
                          on_error=lambda error: self._on_add_failed(source, error),
                          on_finished=self._added_or_not, owner=self)

    def _added_or_not(self) -> None:
        self._adding = False
        if self.versions_dialog is not None:
            self.versions_dialog.set_adding(None)

    def _on_added(self, root: Path, source: Path, added: AddedModels, what: str | None) -> None:
        version = added.added
        text = f"Added {what or source} as {version_words(version)}"
        study = self._study()
        if study is None or study.root != root:
            self.message.emit(f"{text} in {root}")
            return
        self._added = (root, version.model_id)
        if version.demo:
            text += f": {DEMO_NOTICE}"
        text += ". It is now the active model." if added.activated else "."
        self.message.emit(text)
        if self.versions_dialog is not None:
            self.versions_dialog.show_status(text)
        self.modelsAdded.emit(added)
        if added.activated:
            self._switched()
            return
        self._fill_versions()
        if self.versions_dialog is not None:
            self.versions_dialog.select(version.model_id)
        if confirm(self.versions_dialog or self.window, "Model added",
                   f"{text}\n\nMake {version.model_id} the active model now? (The active model is "
                   f"{added.active}; you can switch back here at any time.)"):
            self.activate(version.model_id)

    def _on_add_failed(self, source: Path, error: BaseException) -> None:
        text = add_failure_text(source, error)
        self.message.emit("Models not added: " + text.splitlines()[0])
        if self.versions_dialog is not None:
            self.versions_dialog.show_status(text.replace("\n\n", " "), problem=True)
        show_error(self.versions_dialog or self.window, "Models not added", text,
                   "Nothing was added; the active model is unchanged.")
        self.addFailed.emit(text)

    def _switched(self) -> None:
        study = self._study()
        if study is None:
            return
        self.modelSwitched.emit(peek_active_model(study))
        if self.versions_dialog is not None and self.versions_dialog.isVisible():
            self._fill_versions()

"""The review workspace's model actions: run the model on this slice or case, take its answers in, and switch to
another model after an activation (a retrain, by hand, a rollback), refreshing the predictions of the unreviewed
slices in the background. Owned by :class:`desktop.review.controller.ReviewController`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6 import QtCore

from core.review.models import ModelLink
from core.review.session import ReviewSession
from core.study.annotation_source import unreviewed_slices
from core.study.slice_key import SliceKey, slice_key
from desktop.dialogs.messages import error_text
from desktop.panels.model_panel import ModelPanel
from desktop.review.model_runner import ModelRunner
from desktop.workers import run_in_background


class ModelActions(QtCore.QObject):
    """Runs ``runner`` on what ``session()`` and ``current()`` (the review's session and slice) name, from the buttons
    of ``model_panel``. ``refresh(keys)`` shows new results of ``keys`` (their summaries, and the slice when it is one
    of them); ``switched(demo)`` shows that another model is active (its kind, its results, a new scan)."""

    message = QtCore.Signal(str)  # for the status bar

    def __init__(self, runner: ModelRunner, model_panel: ModelPanel, session: Callable[[], ReviewSession | None],
                 current: Callable[[], SliceKey | None], refresh: Callable[[list[SliceKey]], None],
                 switched: Callable[[bool], None], parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.runner, self._model_panel = runner, model_panel
        self._session, self._current, self._refresh, self._switched = session, current, refresh, switched
        model_panel.runSliceRequested.connect(self.run_on_slice)
        model_panel.runCaseRequested.connect(self.run_on_case)
        model_panel.cancelRequested.connect(runner.cancel)
        runner.progressed.connect(model_panel.show_progress)
        runner.finished.connect(self._on_finished)
        runner.cancelled.connect(self._on_cancelled)
        runner.runFailed.connect(lambda text: self.message.emit(f"The model run failed: {text}"))

    def run_on_slice(self) -> None:
        key = self._current()
        if key is not None:
            self._run([key])

    def run_on_case(self) -> None:
        key, session = self._current(), self._session()
        if key is not None and session is not None:
            self._run([k for k in session.keys if k.case == slice_key(key).case])

    def _run(self, keys: list[SliceKey]) -> None:
        if self.runner.pipeline is None:
            self.message.emit("No model is ready: " + self._model_panel.description.text())
        elif self.runner.busy:
            self.message.emit("The model is already running; wait for it or press Cancel")
        else:
            self.runner.run(self._session().study, keys)

    def _wrote(self, keys: list[SliceKey]) -> None:
        session = self._session()
        if session is None:
            return
        if session.model_id != self.runner.pipeline.model_id:
            session.set_model(self.runner.pipeline.model_id)
        session.forget_model_results(keys)
        self._refresh(keys)

    def _on_finished(self, report: Any, keys: list[SliceKey]) -> None:
        self._wrote(keys)
        errors = getattr(report, "errors", [])
        text = f"The model diagnosed {getattr(report, 'slices', len(keys))} slice(s)"
        self.message.emit(text + (f"; {len(errors)} could not be read: {errors[0][1]}" if errors else ""))

    def _on_cancelled(self, keys: list[SliceKey]) -> None:
        self._wrote(keys)
        self.message.emit("Model run cancelled; the slices it finished keep their results")

    def switch_model(self, link: ModelLink) -> None:
        """Another model was activated (a retrain, by hand, a rollback): show its predictions, load it, and then
        refresh the predictions of the unreviewed slices in the background (Cancel stops that as any run)."""
        session = self._session()
        if session is None:
            return
        session.set_model(link.model_id)

        def refresh(keys: list[SliceKey]) -> None:
            # the files were read in the background: a slice marked reviewed since, still being saved, stays as it is
            pending = session.unsaved_annotations()
            keys = [key for key in keys if not (key in pending and pending[key].reviewed)]
            if session is self._session() and keys and self.runner.pipeline is not None and not self.runner.busy:
                self.message.emit(f"Refreshing the predictions of {len(keys)} unreviewed slice(s) with "
                                  f"{link.model_id} …")
                self.runner.run(session.study, keys)

        self.runner.attach(link, on_ready=lambda: run_in_background(
            unreviewed_slices, session.study, on_result=refresh,
            on_error=lambda error: self.message.emit(f"Predictions not refreshed: {error_text(error)}")))
        self._switched(link.demo)


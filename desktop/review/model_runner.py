"""The diagnosis model in the background: loading it, running it on slices with progress, and Cancel.

The pipeline is loaded by ``loader(path)`` (by default :func:`core.review.models.load_pipeline`; tests pass a fake
with the same interface: ``model_id``, ``is_demo``, ``describe()`` and the generator ``diagnose_study(study,
slices=...)``). Nothing here runs on the GUI thread but the signal handlers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PySide6 import QtCore

from core.review.models import NO_MODEL, ModelLink, load_pipeline
from core.study.layout import Study
from core.study.slice_key import SliceKey
from desktop.dialogs.messages import error_text
from desktop.workers import run_in_background, run_job

Loader = Callable[[Path], Any]


class ModelRunner(QtCore.QObject):
    """States: ``none`` (no model), ``loading``, ``ready``, ``running``, ``failed`` (the app goes on without)."""

    stateChanged = QtCore.Signal(str, str)
    loadFailed = QtCore.Signal(str)
    progressed = QtCore.Signal(object)  # Progress
    finished = QtCore.Signal(object, object)  # report, the slices it ran on
    cancelled = QtCore.Signal(object)  # the slices it was running on
    runFailed = QtCore.Signal(str)

    def __init__(self, loader: Loader | None = None, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self._loader = loader or load_pipeline
        self.pipeline: Any = None
        self.state = "none"
        self._worker = None
        self._on_ready: Callable[[], Any] | None = None
        self._generation = 0  # a newer study makes late answers about an older one irrelevant

    def _set(self, state: str, message: str) -> None:
        self.state = state
        self.stateChanged.emit(state, message)

    def attach(self, link: ModelLink, on_ready: Callable[[], Any] | None = None) -> None:
        """Load the model of a newly opened study (or a newly activated model) in the background, or say why there
        is none; ``on_ready()`` follows once it is loaded."""
        self.cancel()
        self._generation += 1
        self._on_ready = on_ready
        self.pipeline = None
        if link.path is None:
            if link.problem:
                self._fail(link.problem)
            elif link.model_id:
                self._set("none", f"Showing the predictions of model {link.model_id}; that model is not in this "
                                  "study, so it cannot be run here.")
            else:
                self._set("none", NO_MODEL)
            return
        self._set("loading", f"Loading model {link.model_id} …")
        generation = self._generation
        run_in_background(self._loader, link.path,
                          on_result=lambda pipeline: self._on_loaded(generation, pipeline),
                          on_error=lambda error: self._on_load_error(generation, error), owner=self)

    def _on_loaded(self, generation: int, pipeline: Any) -> None:
        if generation != self._generation:
            return
        self.pipeline = pipeline
        self._set("ready", pipeline.describe())
        on_ready, self._on_ready = self._on_ready, None
        if on_ready is not None:
            on_ready()

    def _on_load_error(self, generation: int, error: BaseException) -> None:
        if generation == self._generation:
            self._fail(error_text(error))

    def _fail(self, text: str) -> None:
        self._set("failed", f"The model cannot be used: {text}. The app goes on without a model; "
                            "you can still draw, label and review boxes.")
        self.loadFailed.emit(text)

    @property
    def busy(self) -> bool:
        return self._worker is not None

    def run(self, study: Study, slices: Sequence[SliceKey]) -> bool:
        """Diagnose ``slices`` in the background; False when no model is ready or a run is going on."""
        if self.pipeline is None or self.busy or not slices:
            return False
        keys, generation = list(slices), self._generation
        job = self.pipeline.diagnose_study(study, slices=keys)
        self._set("running", f"Running {self.pipeline.model_id} on {len(keys)} slice(s) …")

        def current(signal):  # answers about a study that has been closed meanwhile are dropped
            return lambda *args: signal.emit(*args) if generation == self._generation else None

        self._worker = run_job(
            job,
            on_progress=current(self.progressed),
            on_result=lambda report: current(self.finished)(report, keys),
            on_error=lambda error: current(self.runFailed)(error_text(error)),
            on_aborted=lambda: current(self.cancelled)(keys),
            on_finished=self._on_run_finished,
            owner=self,
        )
        return True

    def _on_run_finished(self) -> None:
        self._worker = None
        if self.pipeline is not None:
            self._set("ready", self.pipeline.describe())

    def cancel(self) -> None:
        """Stop the running job at its next progress step (what it wrote so far stays)."""
        if self._worker is not None:
            self._worker.quit()

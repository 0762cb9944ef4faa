"""The review workspace's model actions: run the model on this slice or case, take its answers in, and switch to
another model after an activation (a retrain, by hand, a rollback), refreshing the predictions of the unreviewed
slices in the background. A part of :class:`desktop.review_controller.ReviewController`."""

from __future__ import annotations

from typing import Any

from core.review.models import ModelLink
from core.review.summary import SliceKey
from desktop.dialogs.messages import error_text
from desktop.workers import run_in_background


class ModelActions:
    """Mixed into the review controller (it provides ``session``, ``key``, ``cases``, ``view``, ``runner``,
    ``model_panel``, ``message``, ``redraw``, ``refresh_summaries``, ``show_model_kind`` and ``_start_scan``)."""

    def run_model_on_slice(self) -> None:
        if self.key is not None:
            self._run_model([self.key])

    def run_model_on_case(self) -> None:
        if self.key is not None:
            self._run_model([k for k in self.session.keys if k[0] == self.key[0]])

    def _run_model(self, keys: list[SliceKey]) -> None:
        if self.runner.pipeline is None:
            self.message.emit("No model is ready: " + self.model_panel.description.text())
        elif self.runner.busy:
            self.message.emit("The model is already running; wait for it or press Cancel")
        else:
            self.runner.run(self.session.study, keys)

    def _model_wrote(self, keys: list[SliceKey]) -> None:
        session = self.session
        if session is None:
            return
        if session.model_id != self.runner.pipeline.model_id:
            session.set_model(self.runner.pipeline.model_id)
        session.forget_model_results(keys)
        self.refresh_summaries(keys)
        if self.key in keys:
            self.redraw()

    def _on_model_finished(self, report: Any, keys: list[SliceKey]) -> None:
        self._model_wrote(keys)
        errors = getattr(report, "errors", [])
        text = f"The model diagnosed {getattr(report, 'slices', len(keys))} slice(s)"
        self.message.emit(text + (f"; {len(errors)} could not be read: {errors[0][1]}" if errors else ""))

    def switch_model(self, link: ModelLink) -> None:
        """Another model was activated (a retrain, by hand, a rollback): show its predictions, load it, and then
        refresh the predictions of the unreviewed slices in the background (Cancel stops that as any run)."""
        session = self.session
        if session is None:
            return
        session.set_model(link.model_id)
        self.show_model_kind(link.demo)

        def refresh(keys: list[SliceKey]) -> None:
            if session is self.session and keys and self.runner.pipeline is not None and not self.runner.busy:
                self.message.emit(f"Refreshing the predictions of {len(keys)} unreviewed slice(s) with "
                                  f"{link.model_id} …")
                self.runner.run(session.study, keys)

        self.runner.attach(link, on_ready=lambda: run_in_background(
            unreviewed_slices, session.study, on_result=refresh,
            on_error=lambda error: self.message.emit(f"Predictions not refreshed: {error_text(error)}")))
        self.redraw()
        self._start_scan()

    def _on_model_cancelled(self, keys: list[SliceKey]) -> None:
        self._model_wrote(keys)
        self.message.emit("Model run cancelled; the slices it finished keep their results")



def unreviewed_slices(study) -> list[SliceKey]:
    """The slices a new model's predictions are refreshed on (imported late: it loads the training code)."""
    from core.training.retrain import unreviewed_slices as find

    return find(study)

"""The review workspace's behaviour: shows slices, turns mouse and keys into edits of the core session, and keeps
the case list, the selected-box panel and the model panel up to date. Widgets only display; the session (core)
holds the state, the undo history and the saving. Its parts: :mod:`~desktop.review.shown_boxes` draws the slice's
boxes, :mod:`~desktop.review.case_summaries` the case list's summaries, and :mod:`~desktop.review.model_actions`
runs the model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from PySide6 import QtCore

from core.annotations.model import Box, Disease, SliceAnnotation
from core.errors import VertebraReviewError
from core.review.box_edits import BoxRef, stepped_level
from core.review.models import DEMO_BANNER
from core.review.opening import OpenedReview
from core.review.session import ReviewSession
from core.review.summary import SliceSummary
from core.study.slice_key import SliceKey, slice_key
from desktop.dialogs.messages import error_text
from desktop.panels.case_list import CaseListPanel
from desktop.panels.model_panel import OVERLAY_BOTH, OVERLAY_CONSENSUS, OVERLAY_MODES, OVERLAY_READERS, ModelPanel
from desktop.panels.vertebra_panel import VertebraPanel
from desktop.panels.window_panel import WindowLevelPanel
from desktop.review.case_summaries import CaseSummaries
from desktop.review.model_actions import ModelActions
from desktop.review.model_runner import ModelRunner
from desktop.review.reading_view import BLINDED, ReadingView
from desktop.review.shown_boxes import ShownBoxes, selected_index
from desktop.review.slice_overlay import read_only_notice, shortfall_notice
from desktop.viewer.slice_view import SliceView
from desktop.workers import run_in_background


class ReviewController(QtCore.QObject):
    sliceShown = QtCore.Signal(object)  # SliceKey
    message = QtCore.Signal(str)  # for the status bar
    problemChanged = QtCore.Signal(str)  # the current slice's problem, or ""
    saveFailed = QtCore.Signal(str)
    scanFinished = QtCore.Signal()

    def __init__(self, view: SliceView, cases: CaseListPanel, inspector: VertebraPanel,
                 window_panel: WindowLevelPanel, model_panel: ModelPanel, runner: ModelRunner,
                 parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.view, self.cases, self.inspector = view, cases, inspector
        self.window_panel, self.model_panel, self.runner = window_panel, model_panel, runner
        self.session: ReviewSession | None = None
        self.overlay_mode = OVERLAY_BOTH
        self.model_demo = False
        self.reading = ReadingView()
        self.boxes = ShownBoxes(view, inspector, cases, self.reading)
        self.suspended = False
        self.summaries = CaseSummaries(cases, self.reading, lambda: self.session, self)
        self.summaries.message.connect(self.message)
        self.summaries.published.connect(self._update_model_notice)
        self.summaries.scanFinished.connect(self.scanFinished)
        self.model_actions = ModelActions(runner, model_panel, lambda: self.session, lambda: self.key,
                                          self._show_model_results, self._show_new_model, self)
        self.model_actions.message.connect(self.message)
        self._connect()

    # -- the current slice and box live in the session ---------------------------------------------------------------
    @property
    def key(self) -> SliceKey | None:
        return self.session.current if self.session is not None else None

    selected = property(lambda self: selected_index(self.session, False),
                        doc="The selected box when it is one of the reader's.")
    selected_model = property(lambda self: selected_index(self.session, True),
                              doc="The selected box when it is the model's.")
    # -- what the viewer shows of the slice's boxes lives in :class:`ShownBoxes` (read here by tests and benchmark) ---
    _mine = property(lambda self: self.boxes.mine, doc="The reader's result as last drawn or edited.")
    _model_shown = property(lambda self: self.boxes.model_shown, doc="The model's boxes shown beside it.")
    editable = property(lambda self: self.boxes.editable, doc="Whether the reader's boxes are shown editable.")

    def _view_links(self) -> list[tuple[Any, Callable[..., Any]]]:
        """The view's and the case list's signals this controller follows (not while suspended)."""
        return [(self.cases.sliceChosen, self.show), (self.view.sliceStepped, self.step),
                (self.view.boxDrawn, self.add_box), (self.view.boxSelected, self.select),
                (self.view.boxEdited, self.move_box), (self.view.selectionCleared, self._clear_selection),
                (self.view.otherBoxSelected, self.select_model), (self.view.otherBoxEdited, self.move_model_box)]

    def _clear_selection(self) -> None:
        self.select(None)

    def suspend(self) -> None:
        """Hand the viewer and the case list over (to the consensus mode); edits, the scan and model runs stay."""
        if not self.suspended:
            if self.session is not None:
                self.session.flush(30)  # the consensus reads the readers' files: the last edit is on disk first
            self.suspended = True
            for signal, slot in self._view_links():
                signal.disconnect(slot)
            self.view.set_model_notice(None)

    def resume(self) -> None:
        """Take the viewer back and show the current slice again."""
        if self.suspended:
            self.suspended = False
            for signal, slot in self._view_links():
                signal.connect(slot)
            self.view.show_readers(())
            if self.session is not None and self.key is not None:
                self.show(self.key)

    def _connect(self) -> None:
        for signal, slot in self._view_links():
            signal.connect(slot)
        panel = self.inspector
        for signal, slot in ((panel.diseaseToggled, self.toggle_disease), (panel.normalChosen, self.set_normal),
                             (panel.levelChosen, self.set_level), (panel.deleteRequested, self.delete_box),
                             (panel.acceptRequested, self.accept_model), (panel.reviewedRequested, self.reviewed_next),
                             (self.model_panel.overlayChanged, self.set_overlay)):
            signal.connect(slot)

    # -- session ----------------------------------------------------------------------------------------------------
    def _session_links(self, session: ReviewSession) -> list[tuple[Any, Callable[..., Any]]]:
        return [(session.changed, self._on_changed), (session.boxes_changed, self._on_boxes_changed),
                (session.selected, self._on_selected), (session.save_failed, self._on_save_failed)]

    def set_session(self, opened: OpenedReview, *, start: SliceKey | None = None) -> None:
        """Show ``opened``; at ``start`` (where the reader left off) when it is in the study, else its first slice."""
        self.summaries.stop()
        if self.session is not None:
            for event, callback in self._session_links(self.session):
                event.disconnect(callback)
            self.session.close()  # its last edits written before the next study shows
        session = self.session = opened.session
        for event, callback in self._session_links(session):
            event.connect(callback)
        self.reading.attach(session)
        if self.reading.blinding.problem:
            self.message.emit(f"Your done marks cannot be read ({self.reading.blinding.problem}); every case counts "
                              "as not done")
        self.cases.set_slices(session.keys, self.reading.summaries(opened.summaries))
        self.show_model_kind(opened.model.demo)
        self.view.set_notice(read_only_notice(session))
        self.runner.attach(opened.model)
        for key in session.unsaved():  # recovered edits
            self.summaries.refresh([key])
        first = start if start is not None and start in session.position else None
        first = first or next(iter(self.cases.visible_keys()), None)
        if first is not None:
            self.show(first, fit=True)
        self.summaries.scan()

    def show_model_kind(self, demo: bool) -> None:
        """A demo model: the banner over the image, and the hint in the notice of a model that found too few."""
        self.model_demo = demo
        self.view.set_demo_banner(f"⚠ {DEMO_BANNER}" if demo else None)
        self._update_model_notice()

    def _show_new_model(self, demo: bool) -> None:
        """Another model is active (:meth:`ModelActions.switch_model`): its kind, its results, and a new scan."""
        self.show_model_kind(demo)
        self.redraw()
        self.summaries.scan()

    def _update_model_notice(self) -> None:
        summary = self.cases.summary(self.key) if self.key is not None and not self.suspended else None
        self.view.set_model_notice(shortfall_notice(summary, self.overlay_mode, demo=self.model_demo))

    # -- showing ----------------------------------------------------------------------------------------------------
    def show(self, key: SliceKey, *, fit: bool = False) -> None:
        session = self.session
        if session is None or key not in session.position:
            return
        session.select(key, session.selection if key == self.key else None)
        self.cases.select(key)
        problems = []
        try:
            image = session.image(key)
        except VertebraReviewError as error:
            self.view.clear()
            self.view.set_model_notice(None)
            self._show_problem(key, f"image not shown: {error_text(error)}")
            self.inspector.show_vertebra(None, editable=False)
            self.sliceShown.emit(key)
            return
        self.view.set_slice(image, self.window_panel.set_image(image), fit=fit, ids=key)
        try:
            self.boxes.mine = session.editor(key).state
        except VertebraReviewError as error:
            self.boxes.mine = None
            problems.append(f"your annotation cannot be edited: {error_text(error)}")
        problems += self._draw_boxes()
        self._show_problem(key, "; ".join(problems))
        self._read_ahead(key)
        self.sliceShown.emit(key)

    def _draw_boxes(self) -> list[str]:
        """Draw the boxes the overlay mode asks for; returns problems with the model's or consensus files."""
        problems = self.boxes.draw(self.session, self.key, self.overlay_mode)
        self._update_model_notice()
        return problems

    def _show_problem(self, key: SliceKey, problem: str) -> None:
        if problem:
            summary = self.cases.summary(key) or SliceSummary()
            self.cases.update_summaries({key: replace(summary, problem=problem)})
        self.problemChanged.emit(f"⚠ {slice_key(key).text}: {problem}" if problem else "")

    def _read_ahead(self, key: SliceKey) -> None:
        following = self.cases.neighbour(key, 1)
        if following is not None and following != key:
            run_in_background(self.session.read_ahead, following, owner=self)

    def redraw(self) -> None:
        if self.session is not None and self.key is not None and not self.suspended:
            self._draw_boxes()

    # -- navigation and selection -----------------------------------------------------------------------------------
    def step(self, delta: int) -> None:
        following = self.cases.neighbour(self.key, delta)
        if following is not None and following != self.key:
            self.show(following)

    def select(self, index: int | None) -> None:
        """Select one of the reader's boxes (None: nothing)."""
        if self.session is not None and self.key is not None:
            self.session.select(self.key, None if index is None else BoxRef(index))

    def select_model(self, index: int) -> None:
        """Select one of the model's boxes; where the reader has a box on that vertebra, that box is selected."""
        if self.session is not None and self.key is not None:
            self.session.select(self.key, self.boxes.resolve(BoxRef(index, model=True)))

    def _on_selected(self, key: SliceKey | None, box: BoxRef | None) -> None:
        """Only the selection changed: the two boxes concerned and the selected-box panel, nothing else drawn."""
        if key is not None and not self.suspended:
            self.view.select_boxes(self.selected, self.selected_model)
            self.boxes.show_selected(self.session)

    def _target(self) -> BoxRef | None:
        if self.selected is not None:
            return BoxRef(self.selected)
        return BoxRef(self.selected_model, model=True) if self.selected_model is not None else None

    def select_step(self, delta: int) -> None:
        """Tab: the next box down the spine (Shift+Tab: up)."""
        target = self.boxes.along_spine(self._target(), delta)
        if target is not None:
            (self.select_model if target.model else self.select)(target.index)

    def set_overlay(self, mode: str) -> None:
        self.overlay_mode = mode if mode in OVERLAY_MODES else OVERLAY_BOTH
        self.model_panel.set_overlay(self.overlay_mode)
        self.redraw()
        if self.key is not None and self.overlay_mode in (OVERLAY_CONSENSUS, OVERLAY_READERS) \
                and self.reading.blinded(slice_key(self.key).case):
            self.message.emit(BLINDED.format(case=slice_key(self.key).case))

    def mark_case_done(self) -> None:
        """Mark the current case done in the reader's own reading (blinding lifts for it)."""
        if self.session is None or self.key is None:
            self.message.emit("Open a study first")
            return
        text = self.reading.mark_done(slice_key(self.key).case, self.view)
        if text:
            self.message.emit(text)
            self.refresh_summaries([k for k in self.session.keys if k.case == self.key.case])
            self.redraw()

    def cycle_overlay(self) -> None:
        self.set_overlay(OVERLAY_MODES[(OVERLAY_MODES.index(self.overlay_mode) + 1) % len(OVERLAY_MODES)])

    # -- editing ----------------------------------------------------------------------------------------------------
    def _edit(self, action: Callable[[ReviewSession, SliceKey], Any]) -> Any:
        if self.session is None or self.key is None or not self.boxes.editable:
            self.message.emit("This slice cannot be edited here" + ("" if self.session else ": open a study first")
                              + ("; show your boxes (M)" if self.session and self.boxes.mine is not None else ""))
            return None
        try:
            return action(self.session, self.key)
        except VertebraReviewError as error:
            self.message.emit(error_text(error))
            return None

    def _edit_box(self, action: Callable[[ReviewSession, SliceKey, BoxRef], int | None],
                  target: BoxRef | None = None) -> None:
        """Edit the selected box (or ``target``); a model box is taken into the reader's result by the same step,
        and the selection follows it there."""
        target = target or self._target()
        if target is None:
            self.message.emit("Select a box first: click it, or press Tab")
            return
        index = self._edit(lambda s, k: action(s, k, target))
        if index is not None and target.model:
            self.select(index)
            self.message.emit("Took the model's box into your result with this edit (Ctrl+Z undoes both)")

    def add_box(self, box: Box) -> None:
        index = self._edit(lambda s, k: s.add_box(k, box))
        if index is not None:
            self.select(index)

    def move_box(self, index: int, box: Box) -> None:
        self._edit_box(lambda s, k, ref: s.move_box(k, ref, box), BoxRef(index))

    def move_model_box(self, index: int, box: Box) -> None:
        self._edit_box(lambda s, k, ref: s.move_box(k, ref, box), self.boxes.resolve(BoxRef(index, model=True)))
        self.redraw()  # a refused move puts the model's box back where it was

    def delete_box(self) -> None:
        self._edit_box(lambda s, k, ref: s.delete_box(k, ref))

    def toggle_disease(self, disease: Disease) -> None:
        self._edit_box(lambda s, k, ref: s.toggle_disease(k, ref, disease))

    def set_normal(self) -> None:
        self._edit_box(lambda s, k, ref: s.set_diseases(k, ref, ()))

    def set_level(self, level: str | None) -> None:
        self._edit_box(lambda s, k, ref: s.set_level(k, ref, level))

    def step_level(self, delta: int) -> None:
        vertebra = self.boxes.vertebra(self._target())
        if vertebra is None:
            self.message.emit("Select a box first: click it, or press Tab")
            return
        self.set_level(stepped_level(vertebra.level, delta))

    def accept_model(self) -> None:
        chosen = self.selected_model
        if self._edit(lambda s, k: s.accept_model(k) or True):
            if chosen is not None:
                self.select(chosen)  # the model's box is now the reader's, at the same place in the list
            self.message.emit("Accepted the model's result for this slice (Ctrl+Z undoes it)")

    def reviewed_next(self) -> None:
        done = self._edit(lambda s, k: s.mark_reviewed(k))
        if done is None:
            return
        following = self.cases.neighbour(self.key, 1)
        if following is not None and following != self.key:
            self.show(following)
            self.message.emit(f"{done.capitalize()}; now {following[0]}/{following[1]}")
        else:
            self.message.emit(f"{done.capitalize()}; that was the last slice in the list")

    def undo(self) -> None:
        if self.session is not None and self.key is not None and not self.session.undo(self.key):
            self.message.emit("Nothing to undo on this slice")

    def redo(self) -> None:
        if self.session is not None and self.key is not None and not self.session.redo(self.key):
            self.message.emit("Nothing to redo on this slice")

    def _on_changed(self, key: SliceKey, state: SliceAnnotation) -> None:
        self.summaries.edited(key)

    def _on_boxes_changed(self, key: SliceKey, state: SliceAnnotation, indices: tuple[int, ...] | None) -> None:
        """An edit of the reader's result: only the boxes it changed are drawn again, unless it changed what the
        other boxes show (boxes added or removed, the slice reviewed, a model box now repeated by the reader's)."""
        if key != self.key:
            return
        if self.suspended:
            self.boxes.mine = state
        elif not self.boxes.redraw_changed(self.session, state, indices):
            self.redraw()

    def _show_model_results(self, keys: list[SliceKey]) -> None:
        """The model wrote new results for ``keys`` (:class:`ModelActions`)."""
        self.refresh_summaries(keys)
        if self.key in keys:
            self.redraw()

    def refresh_summaries(self, keys: list[SliceKey]) -> None:
        self.summaries.refresh(keys)

    def _on_save_failed(self, key: SliceKey, error: BaseException) -> None:
        self.view.set_notice(read_only_notice(self.session))
        self.saveFailed.emit(error_text(error))

"""The consensus mode (consulted co-annotation), the coordinator's view: step through the disagreements only, see the
readers' boxes overlaid (each in their colour and line style) and their labels side by side, and decide: take one
reader's version, the majority, or an edited result; accept unanimous vertebrae in bulk; finalise or reopen a slice.

Every decision goes to the core's :class:`~core.consensus.session.ConsensusSession`, which records it with its
provenance (who agreed, when, how, the readers' versions) in ``consensus/`` at once; a conflict is never decided
without an explicit choice. While the mode is on it has the viewer and the case list to itself (the review
controller is suspended, and its keys are off).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6 import QtCore

from core.annotations.model import Vertebra
from core.consensus.coannotation import (
    consensus_readers,
    consulting_readers,
    first_on_slice,
    step_disagreement,
)
from core.consensus.counts import open_disagreements
from core.consensus.reading import progress_by_reader, reading_progress
from core.consensus.session import ConsensusSession, GroupRef
from core.consensus.styles import reader_style
from core.errors import VertebraReviewError
from core.study.layout import Study
from core.study.slice_key import SliceKey, slice_key
from desktop.consensus.drawing import slice_position, slice_text, versions_on_slice
from desktop.consensus.editing import AgreementStatistics, ResultEdit
from desktop.dialogs.messages import confirm, error_text
from desktop.panels.consensus_panel import ConsensusPanel
from desktop.review.controller import ReviewController
from desktop.workers import run_job


def open_consensus(study: Study, readers: list[str]):
    """Open the co-annotation session (the consistency check) and read each reader's progress."""
    session = yield from ConsensusSession.open(study, readers)
    return session, progress_by_reader(reading_progress(study, readers))


class ConsensusController(QtCore.QObject):
    message = QtCore.Signal(str)
    modeChanged = QtCore.Signal(bool)
    opened = QtCore.Signal(object)  # ConsensusSession
    shown = QtCore.Signal(object)  # the GroupRef shown, or None
    statisticsShown = QtCore.Signal(object)  # the statistics dict

    def __init__(self, review: ReviewController, panel: ConsensusPanel, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.review, self.panel = review, panel
        self.view, self.cases = review.view, review.cases
        self.active = False
        self.session: ConsensusSession | None = None
        self.ref: GroupRef | None = None
        self.key: SliceKey | None = None
        self.include_decided = False
        self.styles: dict[str, Any] = {}
        self.left_out = ""  # who the mode leaves out of the consensus, and why
        self._generation = 0
        self.editing = ResultEdit(lambda: self.session, lambda: self.ref, self._draw, self._decide, self.message.emit)
        self.statistics = AgreementStatistics(lambda: self.session, panel, self.message.emit, self)
        self.statistics.shown.connect(self.statisticsShown)
        self._connect_panel()

    @property
    def draft(self) -> Vertebra | None:
        """The edited result being drawn, not yet recorded (:class:`ResultEdit`)."""
        return self.editing.draft

    def _connect_panel(self) -> None:
        panel, editor, overview = self.panel, self.panel.editor, self.panel.overview
        panel.stepRequested.connect(self.step)
        panel.versions.takeRequested.connect(self.take_reader)
        panel.takeMajorityRequested.connect(self.take_majority)
        panel.editRequested.connect(self.editing.start)
        panel.clearRequested.connect(self.clear)
        panel.finaliseRequested.connect(self.finalise)
        panel.reopenRequested.connect(self.reopen)
        panel.includeDecidedChanged.connect(self._set_include_decided)
        editor.diseaseToggled.connect(self.editing.toggle_disease)
        editor.levelChosen.connect(self.editing.set_level)
        editor.recordRequested.connect(self.editing.record)
        editor.noVertebraRequested.connect(self.editing.record_no_vertebra)
        editor.cancelRequested.connect(self.editing.cancel)
        overview.acceptUnanimousRequested.connect(self.accept_unanimous)
        overview.statisticsRequested.connect(self.statistics.show)
        overview.leaveRequested.connect(self.leave)

    def _view_links(self) -> list[tuple[Any, Callable[..., Any]]]:
        return [(self.cases.sliceChosen, self.show_slice), (self.view.sliceStepped, self.step),
                (self.view.boxEdited, self.editing.move_box), (self.view.boxDrawn, self.editing.draw_box)]

    # -- the mode ---------------------------------------------------------------------------------------------------
    def set_active(self, on: bool) -> None:
        if on:
            self.enter()
        else:
            self.leave()

    def enter(self) -> None:
        """Start the consensus mode on the open study (the session opens in the background)."""
        review_session = self.review.session
        if self.active:
            return
        if review_session is None:
            self.message.emit("Open a study first: the consensus mode works on a study's readers")
            self.modeChanged.emit(False)
            return
        choice = consensus_readers(review_session.study)
        readers = list(choice.readers)
        if len(readers) < 2:
            self.message.emit(f"The consensus mode needs at least two readers with annotations; this study has "
                              f"{len(readers)} ({', '.join(readers) or 'none'}). {choice.note()}".strip())
            self.modeChanged.emit(False)
            return
        self.left_out = choice.note()
        self.active = True
        self.review.suspend()
        for signal, slot in self._view_links():
            signal.connect(slot)
        self._generation += 1
        generation = self._generation
        self.panel.show_group(None, {}, position="Consensus mode: running the consistency check …", editing=False)
        self.modeChanged.emit(True)
        run_job(open_consensus(review_session.study, readers),
                on_result=lambda found: self._on_opened(generation, *found),
                on_error=lambda error: self._on_open_failed(generation, error), owner=self)

    def leave(self) -> None:
        if not self.active:
            return
        self.active = False
        self._generation += 1
        for signal, slot in self._view_links():
            signal.disconnect(slot)
        if self.session is not None:
            self.session.changed.disconnect(self._on_changed)
        self.session, self.ref, self.key = None, None, None
        self.editing.discard()
        self.view.show_readers(())
        self.review.resume()
        self.modeChanged.emit(False)

    def _on_open_failed(self, generation: int, error: BaseException) -> None:
        if generation == self._generation:
            self.message.emit(f"The consensus mode could not start: {error_text(error)}")
            self.leave()

    def _on_opened(self, generation: int, session: ConsensusSession, progress: dict) -> None:
        if generation != self._generation:
            return
        self.session = session
        session.changed.connect(self._on_changed)
        readers = list(session.check.readers)
        self.styles = {r: reader_style(readers, r) for r in readers}
        self.panel.overview.set_readers(readers)
        self.panel.overview.set_progress(progress)
        not_done = session.check.not_done
        notes = [f"Not every reader has marked their cases done ({len(not_done)} reader-cases not done, for example "
                 f"{not_done[0][0]} on {not_done[0][1]})." if not_done else "", self.left_out]
        self.panel.overview.note.setText(" ".join(n for n in notes if n))
        self._update_overview()
        self.opened.emit(session)
        first = step_disagreement(session, None, 1)
        if first is not None:
            self.show(first, fit=True)
        elif session.slice_keys():
            self.show_slice(session.slice_keys()[0], fit=True)
            self.message.emit("No open disagreements: accept the unanimous vertebrae (U) and finalise the slices")

    # -- showing ----------------------------------------------------------------------------------------------------
    def show(self, ref: GroupRef, *, fit: bool = False) -> None:
        if self.session is None:
            return
        self.editing.discard()
        self.ref, self.key = ref, ref.key
        self._draw(fit=fit)

    def show_slice(self, key: SliceKey, *, fit: bool = False) -> None:
        """A slice chosen in the case list: its first disagreement, or the slice itself when the readers agree."""
        if self.session is None:
            return
        if tuple(key) not in self.session.slice_keys():
            self.message.emit(f"{slice_key(key).text} has no reader annotations to agree on")
            return
        ref = first_on_slice(self.session, key)
        if ref is not None:
            self.show(ref, fit=fit)
        else:
            self.editing.discard()
            self.ref, self.key = None, slice_key(key)
            self._draw(fit=fit)

    def _draw(self, *, fit: bool = False) -> None:
        session, key, ref = self.session, self.key, self.ref
        try:
            image = self.review.session.image(key)
        except VertebraReviewError as error:
            self.view.clear()
            self.message.emit(f"{slice_key(key).text}: image not shown: {error_text(error)}")
        else:
            self.view.set_slice(image, self.review.window_panel.set_image(image), fit=fit, ids=key)
        state = session.state(key)
        self.panel.overview.set_slice_readers(state.match.readers)
        self.view.show_readers(versions_on_slice(state, self.styles, ref.group if ref else None))
        group_view = session.view(ref) if ref is not None else None
        result = group_view.resolution.result if group_view and group_view.resolution else None
        if group_view is not None and not fit:
            self.view.ensure_visible(group_view.group.box)
        if self.draft is not None:
            self.view.show_boxes([self.draft], (), selected=0, editable=True)
        else:
            self.view.show_boxes((), [result] if result is not None else (), editable=False, others_from_model=False)
        self.cases.select(key)
        self.panel.show_group(group_view, self.styles, position=slice_position(session, ref, key),
                              editing=self.draft is not None)
        self.panel.editor.show_draft(self.draft)
        self.panel.show_slice(slice_text(state), finalised=state.record.finalised, locked=state.record.locked)
        self.shown.emit(ref)

    def _update_overview(self) -> None:
        if self.session is not None:
            self.panel.overview.set_summary(self.session.summary())

    def _on_changed(self, key: SliceKey) -> None:
        self._update_overview()
        self.review.refresh_summaries([key])
        if key == self.key and self.draft is None:
            self._draw()

    # -- stepping ---------------------------------------------------------------------------------------------------
    def step(self, delta: int) -> None:
        if self.session is None:
            return
        following = step_disagreement(self.session, self.ref, delta, include_decided=self.include_decided)
        if following is None:
            self.message.emit("No more disagreements to step through" + ("" if self.include_decided else
                              " (tick 'Include decided ones' to revisit decisions)"))
        elif following != self.ref:
            self.show(following)

    def _set_include_decided(self, on: bool) -> None:
        self.include_decided = on

    def _advance(self) -> None:
        """After a decision: on to the next open disagreement, or stay when none is left."""
        following = step_disagreement(self.session, self.ref, 1, include_decided=self.include_decided)
        if following is not None and following != self.ref:
            self.show(following)
        else:
            self.editing.discard()
            self._draw()
            if not self.session.disagreements():
                self.message.emit("Every disagreement is decided: accept the unanimous vertebrae (U) and finalise "
                                  "the slices (Ctrl+Enter)")

    # -- deciding ---------------------------------------------------------------------------------------------------
    def _agreed_by(self, *, every_slice: bool = False) -> tuple[str, ...] | None:
        """The readers ticked under Agreed by: of the slice shown, or (``every_slice``) every reader ticked, each
        recorded only on the slices they read. None (and the user is told) when nobody is ticked."""
        overview = self.panel.overview
        chosen = overview.wanted() if every_slice else overview.consulting()
        if not chosen:
            self.panel.show_refusal("Tick who is agreeing (Agreed by) before deciding.")
            self.message.emit("Tick who is agreeing (Agreed by) before deciding")
            return None
        return consulting_readers(chosen, self.session.check.readers)

    def _decide(self, decide: Callable[[tuple[str, ...]], Any], text: str) -> bool:
        if self.session is None or self.ref is None:
            self.message.emit("Nothing to decide here: step to a disagreement (PgDown)")
            return False
        agreed_by = self._agreed_by()
        if agreed_by is None:
            return False
        try:
            decide(agreed_by)
        except VertebraReviewError as error:
            self.panel.show_refusal(error_text(error))
            self.message.emit(error_text(error))
            return False
        self.message.emit(f"{self.ref}: {text}")
        self._advance()
        return True

    def take_reader(self, reader: str) -> bool:
        ref = self.ref
        return self._decide(lambda by: self.session.take_reader(ref, reader, agreed_by=by), f"took {reader}'s version")

    def take_reader_number(self, number: int) -> bool:
        """Keys 1, 2, 3…: the reader in that row of the table."""
        if self.session is None or self.ref is None:
            return False
        readers = list(self.session.group(self.ref).readers)
        if not 1 <= number <= len(readers):
            self.message.emit(f"There is no reader {number} here ({len(readers)} readers)")
            return False
        return self.take_reader(readers[number - 1])

    def take_majority(self) -> bool:
        ref = self.ref
        return self._decide(lambda by: self.session.take_majority(ref, agreed_by=by), "took the majority")

    def clear(self) -> None:
        if self.session is None or self.ref is None:
            return
        try:
            self.session.clear(self.ref)
        except VertebraReviewError as error:
            self.message.emit(error_text(error))
            return
        self.message.emit(f"{self.ref}: decision cleared (it stays in the slice's history)")

    def accept_unanimous(self) -> int:
        """Accept every undecided unanimous vertebra (boxes agreeing) of the slices that are not final."""
        if self.session is None:
            return 0
        agreed_by = self._agreed_by(every_slice=True)
        if agreed_by is None or not confirm(
                self.panel, "Accept unanimous vertebrae",
                "Accept every undecided vertebra on which all readers agree (same label, boxes alike), on every "
                "slice that is not final? Majorities and conflicts stay open for you to decide."):
            return 0
        try:
            accepted = self.session.accept_unanimous(agreed_by=agreed_by)
        except VertebraReviewError as error:
            self.message.emit(error_text(error))
            return 0
        self.message.emit(f"Accepted {accepted} unanimous vertebrae (agreed by {', '.join(agreed_by)})")
        if self.key is not None:
            self._draw()
        return accepted

    # -- slices -----------------------------------------------------------------------------------------------------
    def finalise(self) -> bool:
        """Finalise the slice shown: refused while a disagreement on it is open; its undecided unanimous vertebrae
        are accepted first (after asking)."""
        if self.session is None or self.key is None:
            return False
        key, state = self.key, self.session.state(self.key)
        disputed = [g.index for g in open_disagreements(state)]
        if disputed:
            text = (f"{slice_key(key).text} cannot be finalised: {len(disputed)} disagreement(s) are not decided "
                    f"(vertebra {', '.join(map(str, disputed[:8]))})")
            self.panel.show_refusal(text)
            self.message.emit(text)
            return False
        agreed_by = self._agreed_by()
        if agreed_by is None:
            return False
        try:
            if state.open_groups:
                if not confirm(self.panel, "Finalise the slice",
                               f"Accept the {len(state.open_groups)} unanimous vertebrae of {slice_key(key).text} and "
                               "finalise it?"):
                    return False
                self.session.accept_unanimous([key], agreed_by=agreed_by)
            self.session.finalise(key, agreed_by=agreed_by)
        except VertebraReviewError as error:
            self.panel.show_refusal(error_text(error))
            self.message.emit(error_text(error))
            return False
        self.message.emit(f"{slice_key(key).text} finalised (agreed by {', '.join(agreed_by)}); reopen it to change it")
        following = step_disagreement(self.session, self.ref, 1, include_decided=self.include_decided)
        if following is not None and following.key != key:
            self.show(following)
        return True

    def reopen(self) -> None:
        if self.session is None or self.key is None:
            return
        try:
            self.session.reopen(self.key, note="reopened in the consensus mode")
        except VertebraReviewError as error:
            self.message.emit(error_text(error))
            return
        self.message.emit(f"{slice_key(self.key).text} reopened: its decisions can be changed")

"""The case list's summaries of the review's slices: read for the whole study in the background when a study opens
or another model becomes active (a slice edited meanwhile keeps its newer summary), and worked out again for the
slices that change. Each model result is judged against the rest of its case, and blinding hides what it hides.
Owned by :class:`desktop.review.controller.ReviewController`."""

from __future__ import annotations

from collections.abc import Callable

from PySide6 import QtCore

from core.review.session import ReviewSession
from core.review.summary import SliceSummary, judge_cases, scan_study
from core.study.slice_key import SliceKey, slice_key
from desktop.dialogs.messages import error_text
from desktop.panels.case_list import CaseListPanel
from desktop.review.reading_view import ReadingView
from desktop.workers import run_job


class CaseSummaries(QtCore.QObject):
    """Shows the summaries of ``session()``'s slices in ``cases``, through ``reading`` (blinding)."""

    message = QtCore.Signal(str)  # for the status bar
    published = QtCore.Signal()  # the case list shows new summaries
    scanFinished = QtCore.Signal()

    def __init__(self, cases: CaseListPanel, reading: ReadingView, session: Callable[[], ReviewSession | None],
                 parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self._cases, self._reading, self._session = cases, reading, session
        self.scanning = False
        self._edited_during_scan: set[SliceKey] = set()
        self._worker = None
        self._generation = 0

    def scan(self) -> None:
        """Read every slice's files in the background (the session's own edits win over what the scan read)."""
        session = self._session()
        self.scanning, self._edited_during_scan = True, set()
        self._generation += 1
        generation = self._generation
        self._worker = run_job(scan_study(session.study, session.reader, session.model_id),
                on_result=lambda found: self._on_scanned(session, found),
                on_error=lambda error: self.message.emit(f"Could not read every slice's files: {error_text(error)}"),
                on_finished=lambda: self._scan_done(generation), owner=self)

    def _scan_done(self, generation: int) -> None:
        if generation == self._generation:
            self.scanning, self._worker = False, None
            self.scanFinished.emit()

    def stop(self) -> None:
        """Stop reading the slices' files (a new study, or the window closes)."""
        if self._worker is not None:
            self._worker.quit()

    def _on_scanned(self, session: ReviewSession, found: dict[SliceKey, SliceSummary]) -> None:
        if session is not self._session():
            return
        for key in self._edited_during_scan:
            found[key] = session.summary(key)
        self._publish(found)

    def edited(self, key: SliceKey) -> None:
        """``key`` was edited: its summary now, and again after a scan that is running."""
        if self.scanning:
            self._edited_during_scan.add(key)
        self.refresh([key])

    def refresh(self, keys: list[SliceKey]) -> None:
        self._publish({key: self._session().summary(key) for key in keys})

    def _publish(self, found: dict[SliceKey, SliceSummary]) -> None:
        """Show new summaries in the case list, each model result judged against the rest of its case."""
        cases = {slice_key(key).case for key in found}
        merged = {key: self._cases.summary(key) or SliceSummary() for key in self._session().keys if key.case in cases}
        merged.update(found)
        self._cases.update_summaries(self._reading.summaries(judge_cases(merged)))
        self.published.emit()

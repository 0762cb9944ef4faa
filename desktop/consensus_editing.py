"""The consensus mode's edited result and its agreement statistics: parts of
:class:`desktop.consensus_controller.ConsensusController`.

An edit is a draft until it is recorded: it starts from the decided result, else the majority, else the readers'
median box with no disease (so a conflict is never decided by starting an edit); its box is dragged or drawn on the
image, its diseases and level are set in the panel, and Record writes it with ``set_result``."""

from __future__ import annotations

from typing import Any

from PySide6 import QtWidgets

from core.annotations.model import NORMAL, Box, Disease
from core.consensus.agreement import agreement_statistics
from core.consensus.coannotation import draft_result
from core.consensus.reading import progress_by_reader, reading_progress
from desktop.dialogs.agreement_dialog import AgreementDialog
from desktop.dialogs.messages import error_text
from desktop.workers import run_in_background


class ResultEditing:
    """Mixed into the consensus controller (it provides ``session``, ``ref``, ``draft``, ``panel``, ``message``,
    ``_draw`` and ``_decide``)."""

    def start_edit(self) -> None:
        if self.session is None or self.ref is None:
            self.message.emit("Step to a disagreement first (PgDown)")
            return
        if self.session.state(self.ref.key).record.locked:
            self.message.emit("This slice is final: reopen it to change it")
            return
        self.draft = draft_result(self.session.view(self.ref))
        self._draw()
        self.message.emit("Editing the result: drag its box, tick its diseases, then Record (Enter); Esc cancels")

    def _change_draft(self, **changes: Any) -> None:
        if self.draft is not None:
            self.draft = self.draft.with_changes(**changes)
            self._draw()

    def toggle_draft_disease(self, code: str) -> None:
        if self.draft is None:
            return
        if code == NORMAL:
            self._change_draft(diseases=frozenset(), diagnosed=True)
        else:
            self._change_draft(diseases=self.draft.diseases ^ {Disease(code)}, diagnosed=True)

    def set_draft_level(self, level: str | None) -> None:
        self._change_draft(level=level)

    def _on_box_edited(self, index: int, box: Box) -> None:
        self._change_draft(box=box)

    def _on_box_drawn(self, box: Box) -> None:
        if self.draft is not None:
            self._change_draft(box=box)

    def record_edit(self) -> bool:
        draft = self.draft
        if draft is None:
            return False
        ref = self.ref
        return self._decide(lambda by: self.session.set_result(ref, draft, agreed_by=by), "recorded an edited result")

    def record_no_vertebra(self) -> bool:
        ref = self.ref
        return self._decide(lambda by: self.session.set_result(ref, None, agreed_by=by), "no vertebra here")

    def cancel_edit(self) -> None:
        if self.draft is not None:
            self.draft = None
            self._draw()


class AgreementStatistics:
    """Mixed into the consensus controller (it provides ``session``, ``panel``, ``message``, ``statistics_dialog`` and
    ``statisticsShown``)."""

    def show_statistics(self) -> None:
        """The agreement statistics against the consensus as it is now (computed in the background)."""
        session = self.session
        if session is None:
            return
        check, readers = session.current_check(), list(session.check.readers)
        self.message.emit("Computing the agreement statistics …")

        def compute() -> tuple[dict, dict]:
            return agreement_statistics(check), progress_by_reader(reading_progress(session.study, readers))

        run_in_background(compute, on_result=lambda found: self._show_statistics(*found),
                          on_error=lambda error: self.message.emit(f"No statistics: {error_text(error)}"), owner=self)

    def _show_statistics(self, statistics: dict, progress: dict) -> None:
        if self.statistics_dialog is None:
            parent = self.panel.window() if isinstance(self.panel.window(), QtWidgets.QWidget) else None
            self.statistics_dialog = AgreementDialog(parent)
        self.statistics_dialog.show_statistics(statistics, progress)
        self.statistics_dialog.show()
        self.statistics_dialog.raise_()
        self.statisticsShown.emit(statistics)

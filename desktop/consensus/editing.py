"""The consensus mode's edited result and its agreement statistics, owned by
:class:`desktop.consensus.controller.ConsensusController`.

An edit is a draft until it is recorded: it starts from the decided result, else the majority, else the readers'
median box with no disease (so a conflict is never decided by starting an edit); its box is dragged or drawn on the
image, its diseases and level are set in the panel, and Record writes it with ``set_result``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6 import QtCore, QtWidgets

from core.annotations.model import NORMAL, Box, Disease, Vertebra
from core.consensus.agreement import agreement_statistics
from core.consensus.coannotation import draft_result
from core.consensus.reading import progress_by_reader, reading_progress
from core.consensus.session import ConsensusSession, GroupRef
from desktop.dialogs.agreement_dialog import AgreementDialog
from desktop.dialogs.messages import error_text
from desktop.workers import run_in_background

#: ``decide(record, what)``: the controller's way to record a decision, ``record(agreed_by)``, said as ``what``.
Decide = Callable[[Callable[[tuple[str, ...]], Any], str], bool]


class ResultEdit:
    """The draft of an edited result of ``ref()`` (a group of ``session()``); ``redraw()`` shows it, ``decide``
    records it, ``say`` tells the status bar."""

    def __init__(self, session: Callable[[], ConsensusSession | None], ref: Callable[[], GroupRef | None],
                 redraw: Callable[[], None], decide: Decide, say: Callable[[str], None]) -> None:
        self._session, self._ref, self._redraw, self._decide, self._say = session, ref, redraw, decide, say
        self.draft: Vertebra | None = None

    def start(self) -> None:
        session, ref = self._session(), self._ref()
        if session is None or ref is None:
            self._say("Step to a disagreement first (PgDown)")
            return
        if session.state(ref.key).record.locked:
            self._say("This slice is final: reopen it to change it")
            return
        self.draft = draft_result(session.view(ref))
        self._redraw()
        self._say("Editing the result: drag its box, tick its diseases, then Record (Enter); Esc cancels")

    def _change(self, **changes: Any) -> None:
        if self.draft is not None:
            self.draft = self.draft.with_changes(**changes)
            self._redraw()

    def toggle_disease(self, code: str) -> None:
        if self.draft is None:
            return
        if code == NORMAL:
            self._change(diseases=frozenset(), diagnosed=True)
        else:
            self._change(diseases=self.draft.diseases ^ {Disease(code)}, diagnosed=True)

    def set_level(self, level: str | None) -> None:
        self._change(level=level)

    def move_box(self, index: int, box: Box) -> None:
        """The draft's box dragged on the image (the only box shown while editing)."""
        self._change(box=box)

    def draw_box(self, box: Box) -> None:
        """A box drawn on the image while editing becomes the draft's."""
        self._change(box=box)

    def record(self) -> bool:
        draft, session, ref = self.draft, self._session(), self._ref()
        if draft is None:
            return False
        return self._decide(lambda by: session.set_result(ref, draft, agreed_by=by), "recorded an edited result")

    def record_no_vertebra(self) -> bool:
        session, ref = self._session(), self._ref()
        return self._decide(lambda by: session.set_result(ref, None, agreed_by=by), "no vertebra here")

    def cancel(self) -> None:
        if self.draft is not None:
            self.draft = None
            self._redraw()

    def discard(self) -> None:
        """Another group is shown, or the mode ends: the draft goes, unrecorded (the caller redraws)."""
        self.draft = None


class AgreementStatistics(QtCore.QObject):
    """The agreement statistics of ``session()`` in a dialog over ``parent_widget``'s window; ``shown(statistics)``
    once they are on screen."""

    shown = QtCore.Signal(object)  # the statistics dict

    def __init__(self, session: Callable[[], ConsensusSession | None], parent_widget: QtWidgets.QWidget,
                 say: Callable[[str], None], parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self._session, self._parent_widget, self._say = session, parent_widget, say
        self.dialog: AgreementDialog | None = None

    def show(self) -> None:
        """The agreement statistics against the consensus as it is now (computed in the background)."""
        session = self._session()
        if session is None:
            return
        check, readers = session.current_check(), list(session.check.readers)
        self._say("Computing the agreement statistics …")

        def compute() -> tuple[dict, dict]:
            return agreement_statistics(check), progress_by_reader(reading_progress(session.study, readers))

        run_in_background(compute, on_result=lambda found: self._show(*found),
                          on_error=lambda error: self._say(f"No statistics: {error_text(error)}"), owner=self)

    def _show(self, statistics: dict, progress: dict) -> None:
        if self.dialog is None:
            window = self._parent_widget.window()
            self.dialog = AgreementDialog(window if isinstance(window, QtWidgets.QWidget) else None)
        self.dialog.show_statistics(statistics, progress)
        self.dialog.show()
        self.dialog.raise_()
        self.shown.emit(statistics)

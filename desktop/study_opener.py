"""Opening a study for review in the background, then, on the GUI thread, the two questions that may come with
it: the same reader has it open already (the lock), and edits from a crash are waiting (the journal)."""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtWidgets

from core.errors import VertebraReviewError
from core.review.lock import StudyLock
from core.review.opening import OpenedReview, open_review
from core.review.preferences import AppDirs
from desktop.dialogs.messages import confirm, error_text, show_error, show_info
from desktop.workers import run_job


class StudyOpener(QtCore.QObject):
    opened = QtCore.Signal(object, object)  # OpenedReview, StudyLock or None
    failed = QtCore.Signal(str)
    progressed = QtCore.Signal(str)

    def __init__(self, parent: QtWidgets.QWidget, dirs: AppDirs | None = None) -> None:
        super().__init__(parent)
        self._window = parent
        self._dirs = dirs
        self.busy = False

    def open(self, path: str | Path, reader: str, *, import_into: str | Path | None = None) -> None:
        """Open (or import, then open) ``path`` in the background; ``opened`` or ``failed`` follows."""
        self.busy = True
        path = Path(path)
        run_job(
            open_review(path, reader, import_into=import_into, dirs=self._dirs),
            on_progress=lambda p: self.progressed.emit(p.message),
            on_result=self._on_loaded,
            on_error=lambda error: self._on_error(path, error),
            on_finished=self._done,
            owner=self,
        )

    def _done(self) -> None:
        self.busy = False

    def _on_error(self, path: Path, error: BaseException) -> None:
        show_error(self._window, "Could not open", error,
                   "Nothing else has changed. Check the folder or file, or open another one.")
        self.failed.emit(f"{path}: {error_text(error)}")

    def _on_loaded(self, opened: OpenedReview) -> None:
        session = opened.session
        lock = None
        if not session.read_only:
            lock = StudyLock(session.study.root, session.reader)
            holder = lock.holder()
            if holder is not None and not confirm(
                self._window, "Study already open",
                f"This study is already open for you: {holder.describe()}.\n\nIf you edit the same slices in "
                "both windows, the later save wins. Open it here anyway?",
            ):
                self.failed.emit("not opened: the study is open in another window")
                return
            try:
                lock.acquire()
            except VertebraReviewError:
                lock = None
        self._recover(opened)
        self.opened.emit(opened, lock)

    def _recover(self, opened: OpenedReview) -> None:
        session, journal = opened.session, opened.session.journal
        if journal is None:
            return
        if journal.problem:
            show_info(self._window, "Recovery journal", journal.problem)
        pending = journal.pending()
        if not pending:
            return
        names = ", ".join(f"{c}/{s}" for c, s in list(pending)[:5]) + (" …" if len(pending) > 5 else "")
        if confirm(self._window, "Recover unsaved edits",
                   f"{len(pending)} slice(s) have edits that were not saved when the app last closed: {names}.\n\n"
                   "Recover them? (No puts them aside in a file, nothing is deleted.)"):
            recovered = session.recover(pending)
            if len(recovered) < len(pending):
                show_info(self._window, "Recover unsaved edits",
                          f"{len(pending) - len(recovered)} entries no longer fit their slice and stay in "
                          f"{journal.path}.")
        else:
            kept = journal.discard()
            if kept is not None:
                show_info(self._window, "Recover unsaved edits", f"The unsaved edits were put aside in {kept}.")

"""Opening a study for review in the background, then, on the GUI thread, the two questions that may come with
it: the same reader has it open already (the lock), and edits from a crash are waiting (the journal).

An import that brings LabelMe JSON asks first whose annotations they are (the reader's own by default). After an
import, the files that were not imported are listed with their reasons, in a window that stays open beside the
study."""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtWidgets

from core.errors import VertebraReviewError
from core.review.lock import StudyLock
from core.review.opening import OpenedReview, labelme_in_source, open_review
from core.review.preferences import AppDirs
from core.study.layout import Study
from desktop.dialogs.import_reader_dialog import ImportReader, ask_import_reader
from desktop.dialogs.import_report_dialog import ImportReportDialog, worth_showing
from desktop.dialogs.messages import confirm, error_text, show_error, show_info
from desktop.workers import GuiCalls, run_job


class StudyOpener(QtCore.QObject):
    opened = QtCore.Signal(object, object)  # OpenedReview, StudyLock or None
    failed = QtCore.Signal(str)
    progressed = QtCore.Signal(str)

    def __init__(self, parent: QtWidgets.QWidget, dirs: AppDirs | None = None) -> None:
        super().__init__(parent)
        self._window = parent
        self._dirs = dirs
        self.busy = False
        self.report_dialog: ImportReportDialog | None = None
        self._gui = GuiCalls(self)  # the session's saves run on a writer thread and report back here

    def open(self, path: str | Path, reader: str, *, import_into: str | Path | None = None) -> None:
        """Open (or import, then open) ``path`` in the background; ``opened`` or ``failed`` follows. An import
        with LabelMe JSON asks first whose annotations they are."""
        path = Path(path)
        answer = self._ask_import_reader(path, reader, import_into)
        if answer is None:
            self.failed.emit(f"{path}: not imported (cancelled)")
            return
        import_reader = answer.reader
        self.busy = True
        run_job(
            open_review(path, reader, import_into=import_into, dirs=self._dirs, import_reader=import_reader,
                        deliver=self._gui.post),
            on_progress=lambda p: self.progressed.emit(p.message),
            on_result=lambda opened: self._on_loaded(opened, path, import_reader),
            on_error=lambda error: self._on_error(path, error),
            on_finished=self._done,
            owner=self,
        )

    def _ask_import_reader(self, path: Path, reader: str, import_into: str | Path | None) -> ImportReader | None:
        """Whose the LabelMe annotations of an import are (no question when there are none); None: cancelled."""
        if Study.is_study(path):
            return ImportReader(None)
        try:
            found = labelme_in_source(path, import_into, self._dirs)
        except OSError:
            found = None  # the import itself says what cannot be read
        if found is None:
            return ImportReader(None)
        return ask_import_reader(self._window, found, reader)

    def _done(self) -> None:
        self.busy = False

    def _on_error(self, path: Path, error: BaseException) -> None:
        show_error(self._window, "Could not open", error,
                   "Nothing else has changed. Check the folder or file, or open another one.")
        text = error_text(error)  # a typed error names its file first: said once, not twice
        self.failed.emit(text if text.startswith(str(path)) else f"{path}: {text}")

    def _on_loaded(self, opened: OpenedReview, source: Path | None = None, import_reader: str | None = None) -> None:
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
        if opened.imported is not None and worth_showing(opened.imported):
            self._show_report(opened, source or session.study.root, import_reader)

    def _show_report(self, opened: OpenedReview, source: Path, import_reader: str | None) -> None:
        """List what was not imported, and why, in a window beside the study (replacing an earlier list)."""
        if self.report_dialog is not None:
            self.report_dialog.close()
            self.report_dialog.deleteLater()
        to = f"reader '{import_reader}'" if import_reader else "the readers the files name (else 'imported')"
        self.report_dialog = ImportReportDialog(opened.imported, source, opened.session.study.root, to,
                                                self._window)
        self.report_dialog.show()

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

"""File › Open from PACS… and File › Send results to PACS…: the window's side of :mod:`desktop.dialogs.pacs_open_dialog`
and :mod:`desktop.dialogs.pacs_send_dialog`. The dialogs stay open beside the window (it never waits on them or on
the network); a retrieved study is opened in the window, and the study folder chosen is offered again next time."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6 import QtCore, QtGui, QtWidgets

from core.errors import VertebraReviewError
from core.pacs.references import default_key_file
from core.pacs.servers import ServerList
from core.review.export import export_sources
from core.review.preferences import AppDirs, Preferences
from core.review.session import ReviewSession
from desktop.dialogs.export_dialog import documents_folder
from desktop.dialogs.messages import show_error, show_info

if TYPE_CHECKING:  # the dialogs load the DICOM and network libraries: only when one is asked for
    from core.pacs.retrieve import RetrieveReport
    from desktop.dialogs.pacs_open_dialog import PacsOpenDialog
    from desktop.dialogs.pacs_send_dialog import PacsSendDialog

#: The preferences key of the study folder the last retrieval went to.
PACS_STUDY_KEY = "pacs_study_folder"
#: The study folder offered the first time, in the user's Documents.
DEFAULT_STUDY_NAME = "PACS study"


class PacsActions(QtCore.QObject):
    """``open_study(path)`` opens a study in the window; ``study_opened`` is the window's signal that one is open
    (the send action waits for it); ``preferences()`` the window's preferences, so its next save keeps ours."""

    message = QtCore.Signal(str)

    def __init__(self, parent: QtWidgets.QWidget, session: Callable[[], ReviewSession | None],
                 open_study: Callable[[Path], None], study_opened: QtCore.SignalInstance,
                 dirs: AppDirs | None = None, *, preferences: Callable[[], Preferences] | None = None) -> None:
        super().__init__(parent)
        self._parent, self._session, self._open_study = parent, session, open_study
        self._dirs, self._shared_preferences = dirs, preferences
        self.open_dialog: PacsOpenDialog | None = None
        self.send_dialog: PacsSendDialog | None = None
        self._send_actions: list[QtGui.QAction] = []
        study_opened.connect(lambda _opened: self._enable_send(True))

    def watch_send(self, action: QtGui.QAction) -> QtGui.QAction:
        """``action`` sends: it is off until a study is open."""
        self._send_actions.append(action)
        action.setEnabled(self._session() is not None)
        return action

    def _enable_send(self, on: bool) -> None:
        for action in self._send_actions:
            action.setEnabled(on)

    def _servers(self) -> ServerList | None:
        try:
            return ServerList.load()
        except VertebraReviewError as error:
            show_error(self._parent, "PACS servers", error,
                       "Fix or remove the file (`vertebra-review pacs servers` lists what it can read).")
            return None

    @staticmethod
    def _show(dialog: QtWidgets.QDialog) -> None:
        dialog.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()

    # -- open -------------------------------------------------------------------------------------------------------
    def ask_open(self) -> None:
        """The query form beside the window (the one already open, when there is one)."""
        if self.open_dialog is not None:
            self.open_dialog.raise_()
            self.open_dialog.activateWindow()
            return
        servers = self._servers()
        if servers is None:
            return
        from desktop.dialogs.pacs_open_dialog import PacsOpenDialog

        dialog = PacsOpenDialog(servers.servers, self._start_folder(), servers_file=servers.path, parent=self._parent)
        dialog.retrieved.connect(self._on_retrieved)
        dialog.finished.connect(lambda _code: setattr(self, "open_dialog", None))  # closed: deleted soon after
        self.open_dialog = dialog
        self._show(dialog)

    def _preferences(self) -> Preferences:
        return self._shared_preferences() if self._shared_preferences is not None else Preferences.load(self._dirs)

    def _start_folder(self) -> Path:
        last = self._preferences().extra.get(PACS_STUDY_KEY)
        if isinstance(last, str) and Path(last).is_absolute() and Path(last).parent.is_dir():
            return Path(last)
        return documents_folder() / DEFAULT_STUDY_NAME

    def _on_retrieved(self, folder: Path, report: RetrieveReport) -> None:
        preferences = self._preferences()
        preferences.extra[PACS_STUDY_KEY] = str(folder)
        try:
            preferences.save(self._dirs)
        except VertebraReviewError as error:
            self.message.emit(f"Preferences not saved: {error}")
        imported = report.imported
        cases = ", ".join(f"{case.case} ({case.slices} slices)" for case in imported.cases) if imported else ""
        already = f"already in the study as {imported.duplicates[0][1]}" if imported and imported.duplicates else ""
        self.message.emit(f"Retrieved {report.downloaded} instances into {folder}: {cases or already}")
        notes = [f"Series {uid} left out: {why}." for uid, why in report.left_out]
        notes += [f"Not imported {what}: {why}." for what, why in (imported.skipped if imported else [])]
        if notes:
            show_info(self._parent, "Open from PACS", "The study opens with what could be retrieved.\n\n"
                      + "\n".join(notes))
        self._open_study(folder)

    # -- send -------------------------------------------------------------------------------------------------------
    def ask_send(self) -> None:
        """Whose results and to which server, beside the window; or why this study cannot send any."""
        session = self._session()
        if session is None:
            return
        if self.send_dialog is not None:
            self.send_dialog.close()
        servers = self._servers()
        if servers is None:
            return
        from desktop.dialogs.pacs_send_dialog import PacsSendDialog

        choices = export_sources(session.study, session.reader, active_model=session.model_id,
                                 unsaved=session.unsaved())
        dialog = PacsSendDialog(servers.servers, session.study, choices, default_key_file(session.study.root),
                                flush=lambda: session.flush(30),
                                unsaved=len(session.unsaved()) if session.read_only else 0,  # not written: not sent
                                servers_file=servers.path, parent=self._parent)
        dialog.sent.connect(lambda report: self.message.emit(
            f"Sent to {dialog.chosen_server().name}: {len(report.sent)} report(s)"))
        dialog.finished.connect(lambda _code: setattr(self, "send_dialog", None))
        self.send_dialog = dialog
        self._show(dialog)

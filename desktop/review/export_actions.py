"""Export: the reader's own reading, the consensus or a model's predictions as labelme files with windowed PNGs and
a findings CSV (asked in :mod:`desktop.dialogs.export_dialog`), and "Open in labelme" (labelme runs as its own
program when it is installed; it is never imported)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from core.errors import VertebraReviewError
from core.imaging.windowing import Window
from core.review.export import FINDINGS_FILE, READER, ExportSource, export_review, export_slice, export_sources
from core.review.findings import write_findings_csv
from core.review.preferences import AppDirs, Preferences, app_dirs
from core.review.session import ReviewSession
from core.study.slice_key import SliceKey, slice_key
from desktop.dialogs import export_dialog
from desktop.dialogs.messages import show_error, show_info
from desktop.workers import run_job, start_program

LABELME = "labelme"
#: The preferences key of the folder the last export went to.
EXPORT_FOLDER_KEY = "export_folder"


def labelme_program() -> str | None:
    return shutil.which(LABELME)


class ExportActions(QtCore.QObject):
    exported = QtCore.Signal(object)  # ExportReport
    message = QtCore.Signal(str)

    def __init__(self, parent: QtWidgets.QWidget, session: Callable[[], ReviewSession | None],
                 current: Callable[[], SliceKey | None], window: Callable[[], Window],
                 dirs: AppDirs | None = None, *, preferences: Callable[[], Preferences] | None = None) -> None:
        """``preferences()``: the window's preferences, so that its next save keeps the export folder (without
        it, the stored ones are read and written)."""
        super().__init__(parent)
        self._parent, self._session, self._current, self._window = parent, session, current, window
        self._dirs, self._shared_preferences = dirs, preferences

    def ask_export(self) -> None:
        """Ask whose annotations to export and where (the folder is made), then export in the background."""
        session = self._session()
        if session is None:
            return
        choices = export_sources(session.study, session.reader, active_model=session.model_id,
                                 unsaved=session.unsaved())
        request = export_dialog.ask_export(self._parent, session.study, choices, self._start_folder(session))
        if request is not None:
            self._remember_folder(request.folder)
            self.export_to(request.folder, request.source)

    def _preferences(self) -> Preferences:
        return self._shared_preferences() if self._shared_preferences is not None else Preferences.load(self._dirs)

    def _start_folder(self, session: ReviewSession) -> Path:
        """The folder of the last export, else a new folder named after the study in the user's Documents."""
        last = self._preferences().extra.get(EXPORT_FOLDER_KEY)
        if isinstance(last, str) and Path(last).is_absolute() and Path(last).parent.is_dir():
            return Path(last)
        name = re.sub(r"[^\w .-]+", "-", session.study.settings.name).strip(" .-") or "study"
        return export_dialog.documents_folder() / f"{name}-labelme"

    def _remember_folder(self, folder: Path) -> None:
        preferences = self._preferences()
        preferences.extra[EXPORT_FOLDER_KEY] = str(folder)
        try:
            preferences.save(self._dirs)
        except VertebraReviewError as error:
            self.message.emit(f"Preferences not saved: {error}")

    def export_to(self, out: Path, source: ExportSource | None = None) -> None:
        """PNGs + LabelMe JSON of ``source`` (default: my annotations, unsaved ones from memory) + findings.csv, in
        the background."""
        session = self._session()
        if session is None:
            return
        source = source or ExportSource.reader(session.reader)
        mine = source.kind == READER and source.name == session.reader
        self.message.emit(f"Exporting {source.describe()} to {out} …")
        run_job(export_review(session.study, out, source, overrides=session.unsaved_annotations() if mine else None),
                on_result=lambda report: self._on_exported(out, source, report),
                on_error=lambda error: show_error(self._parent, "Export failed", error,
                                                  "Nothing in the study was changed; the export folder may hold part "
                                                  "of the export. Choose another folder, or mend the one named."),
                owner=self)

    def _on_exported(self, out: Path, source: ExportSource, report) -> None:
        text = (f"Exported {report.images} images and {report.annotations} annotations of {source.describe()} to "
                f"{out}, with {FINDINGS_FILE}. The JSON files open in labelme.")
        if report.errors:
            text += f"\n\n{len(report.errors)} slice(s) could not be exported, for example {report.errors[0][0]}: " \
                    f"{report.errors[0][1]}"
        show_info(self._parent, "Export", text)
        self.message.emit(text.splitlines()[0])
        self.exported.emit(report)

    def ask_findings_csv(self) -> None:
        if self._session() is None:
            return
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self._parent, "Save findings as CSV", "findings.csv",
                                                        "CSV (*.csv)")
        if path:
            self.findings_to(Path(path))

    def findings_to(self, path: Path) -> None:
        session = self._session()
        items = []
        for key in session.keys:
            try:
                mine = session.mine(key)
            except VertebraReviewError:
                continue
            if mine is not None:
                items.append((key, mine))
        try:
            write_findings_csv(path, items)
        except VertebraReviewError as error:
            show_error(self._parent, "Could not save the findings", error, "Choose another place.")
            return
        self.message.emit(f"Saved {sum(len(a.vertebrae) for _, a in items)} findings to {path}")

    def open_in_labelme(self) -> Path | None:
        """Export this slice (my boxes, the current window) to a scratch folder and open it in labelme."""
        session, key, program = self._session(), self._current(), labelme_program()
        if session is None or key is None:
            return None
        if program is None:
            show_info(self._parent, "Open in labelme", "labelme is not installed (no 'labelme' program on PATH). "
                      "Export for labelme (File menu) writes files you can open in it elsewhere.")
            return None
        try:
            json_path = export_slice(session.study, key, session.mine(key),
                                     (self._dirs or app_dirs()).state / "labelme-view", self._window())
            start_program([program, str(json_path)])
        except (VertebraReviewError, OSError) as error:
            show_error(self._parent, "Open in labelme", error)
            return None
        self.message.emit(f"Opened a copy of {slice_key(key).text} in labelme ({json_path}); edits there stay there")
        return json_path

"""Export: the reader's work as labelme files with windowed PNGs and a findings CSV, and "Open in labelme"
(labelme runs as its own program when it is installed; it is never imported)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from core.errors import VertebraReviewError
from core.imaging.windowing import Window
from core.review.export import FINDINGS_FILE, export_review, export_slice
from core.review.findings import write_findings_csv
from core.review.preferences import AppDirs, app_dirs
from core.review.session import ReviewSession
from core.review.summary import SliceKey
from desktop.dialogs.messages import show_error, show_info
from desktop.workers import run_job, start_program

LABELME = "labelme"


def labelme_program() -> str | None:
    return shutil.which(LABELME)


class ExportActions(QtCore.QObject):
    exported = QtCore.Signal(object)  # ExportReport
    message = QtCore.Signal(str)

    def __init__(self, parent: QtWidgets.QWidget, session: Callable[[], ReviewSession | None],
                 current: Callable[[], SliceKey | None], window: Callable[[], Window],
                 dirs: AppDirs | None = None) -> None:
        super().__init__(parent)
        self._parent, self._session, self._current, self._window = parent, session, current, window
        self._dirs = dirs

    def ask_export(self) -> None:
        session = self._session()
        if session is None:
            return
        folder = QtWidgets.QFileDialog.getExistingDirectory(self._parent, "Export for labelme into folder")
        if folder:
            self.export_to(Path(folder))

    def export_to(self, out: Path) -> None:
        """PNGs + LabelMe JSON of my annotations (unsaved ones from memory) + findings.csv, in the background."""
        session = self._session()
        if session is None:
            return
        self.message.emit(f"Exporting to {out} …")
        run_job(export_review(session.study, out, reader=session.reader, overrides=session.unsaved_annotations()),
                on_result=lambda report: self._on_exported(out, report),
                on_error=lambda error: show_error(self._parent, "Export failed", error,
                                                  "Nothing in the study was changed. Choose another folder."),
                owner=self)

    def _on_exported(self, out: Path, report) -> None:
        text = (f"Exported {report.images} images and {report.annotations} annotations to {out}, with "
                f"{FINDINGS_FILE}. The JSON files open in labelme.")
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
        self.message.emit(f"Opened a copy of {key[0]}/{key[1]} in labelme ({json_path}); edits there stay there")
        return json_path

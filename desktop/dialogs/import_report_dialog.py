"""After an import: every file that was not imported, with the reason (as the command line lists them), what was
already in the study, and the changes made on the way in. It stays open beside the study until closed."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6 import QtCore, QtGui, QtWidgets

if TYPE_CHECKING:  # the importer (pydicom, nibabel, scipy) loads with the first import, not with the window
    from core.study.importer import ImportReport

SKIPPED, IGNORED, ALREADY, NOTE = "skipped", "ignored", "already imported", "note"


def report_rows(report: ImportReport) -> list[tuple[str, str, str]]:
    """(what, file, reason) for everything the import did not take as it was."""
    rows = [(SKIPPED, str(path), why) for path, why in report.skipped]
    rows += [(IGNORED, str(path), why) for path, why in report.ignored]
    rows += [(ALREADY, str(source), f"in the study already, as {case}") for source, case in report.duplicates]
    for note in report.notes:
        where, why = note if isinstance(note, tuple) else ("", note)
        rows.append((NOTE, str(where), str(why)))
    return rows


def worth_showing(report: ImportReport) -> bool:
    """Whether anything was skipped, ignored or changed (an import of known files only is said in the status bar)."""
    return bool(report.skipped or report.ignored or report.notes)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


def summary_text(report: ImportReport, study: Path, annotations_to: str | None = None) -> str:
    cases = len(report.cases)
    annotations = sum(c.annotations for c in report.cases)
    lines = [f"Imported {_plural(report.slice_count, 'slice')} in {_plural(cases, 'case')} into {study}."]
    if annotations and annotations_to:
        lines.append(f"{_plural(annotations, 'annotation file')} went to {annotations_to}.")
    if report.skipped:
        lines.append(f"{_plural(len(report.skipped), 'file')} could not be imported; each is listed below with "
                     "the reason.")
    return "\n".join(lines)


class ImportReportDialog(QtWidgets.QDialog):
    """``table`` lists (what, file, reason); files inside ``source`` are shown by their path within it."""

    def __init__(self, report: ImportReport, source: Path, study: Path, annotations_to: str | None = None,
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Import of {source.name}: what was not imported")
        self.setModal(False)
        self.rows = report_rows(report)
        summary = QtWidgets.QLabel(summary_text(report, study, annotations_to))
        summary.setWordWrap(True)
        summary.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.table = QtWidgets.QTreeWidget()
        self.table.setHeaderLabels(["", "File", "Reason"])
        self.table.setRootIsDecorated(False)
        self.table.setWordWrap(True)
        for what, path, why in self.rows:
            item = QtWidgets.QTreeWidgetItem(self.table, [what, _shown(path, source), why])
            item.setToolTip(1, path)
            item.setToolTip(2, why)
            if what == SKIPPED:
                item.setForeground(0, QtGui.QBrush(QtGui.QColor("#D55E00")))
        for column in (0, 1):
            self.table.resizeColumnToContents(column)
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Close)
        self.copy_button = buttons.addButton("Copy the list", QtWidgets.QDialogButtonBox.ButtonRole.ActionRole)
        self.copy_button.clicked.connect(self.copy_list)
        buttons.rejected.connect(self.close)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(summary)
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)
        self.resize(820, min(560, 200 + 26 * len(self.rows)))

    def text(self) -> str:
        """The list as the command line prints it."""
        return "\n".join(f"{what} {path}: {why}" if path else f"{what}: {why}" for what, path, why in self.rows)

    def copy_list(self) -> None:
        QtWidgets.QApplication.clipboard().setText(self.text())


def _shown(path: str, source: Path) -> str:
    if not path:
        return ""
    try:
        inner = Path(path).relative_to(source)
    except ValueError:
        return path
    return str(inner) if inner.parts else path

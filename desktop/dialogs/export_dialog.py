"""Export for labelme: where to (a folder, made when missing; Browse starts in the user's Documents) and whose
annotations (the reader's own reading, the consensus, or one model), each choice with the slices it would export."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from core.errors import VertebraReviewError
from core.review.export import CONSENSUS, FINDINGS_FILE, READER, ExportSource, SourceChoice, prepare_export_folder
from core.study.layout import Study

Button = QtWidgets.QDialogButtonBox.StandardButton


def documents_folder() -> Path:
    """The user's Documents folder, or their home folder where there is none."""
    location = QtCore.QStandardPaths.writableLocation(QtCore.QStandardPaths.StandardLocation.DocumentsLocation)
    return Path(location) if location and Path(location).is_dir() else Path.home()


def _slices(count: int) -> str:
    return f"{count} slice{'s' if count != 1 else ''}"


def choice_text(choice: SourceChoice) -> str:
    """``My reading (r1) · 12 slices``, ``Consensus · 5 slices``, ``Model v3 (in use) · 60 slices``."""
    source = choice.source
    if source.kind == READER:
        name = f"My reading ({source.name})"
    elif source.kind == CONSENSUS:
        name = "Consensus"
    else:
        name = f"Model {source.name}{' (in use)' if choice.active else ''}"
    if choice.slices:
        return f"{name} · {_slices(choice.slices)}"
    return f"{name} · {'none in this study yet' if source.kind == CONSENSUS else 'no slices'}"


def nearest_folder(path: Path, fallback: Path) -> Path:
    """``path`` or its nearest existing parent folder; ``fallback`` for a relative or empty path."""
    if not path.is_absolute():
        return fallback
    for folder in (path, *path.parents):
        if folder.is_dir():
            return folder
    return fallback


@dataclass(frozen=True)
class ExportRequest:
    """The answer: the (created, writable) folder and the source of the annotations."""

    folder: Path
    source: ExportSource


class ExportDialog(QtWidgets.QDialog):
    """``options`` holds one radio button per source choice, in the order of ``choices``."""

    def __init__(self, study: Study, choices: list[SourceChoice], folder: Path, *,
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export for labelme")
        self.study, self.choices = study, choices
        self.request: ExportRequest | None = None
        layout = QtWidgets.QVBoxLayout(self)
        intro = QtWidgets.QLabel(
            f"Every slice of the study ({_slices(len(study.all_slices()))}) is written as a PNG, with a LabelMe JSON "
            f"beside it where the chosen annotations have one, and {FINDINGS_FILE} with one row per vertebra. "
            "The JSON files open in labelme.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        layout.addWidget(self._setup_sources())
        layout.addWidget(self._setup_folder(folder))
        self.problem = QtWidgets.QLabel()
        self.problem.setObjectName("export-problem")
        self.problem.setStyleSheet("color: #D55E00")
        self.problem.setWordWrap(True)
        layout.addWidget(self.problem)
        self.buttons = QtWidgets.QDialogButtonBox(Button.Ok | Button.Cancel)
        self.buttons.button(Button.Ok).setText("Export")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(560)
        self._update()

    def _setup_sources(self) -> QtWidgets.QGroupBox:
        box = QtWidgets.QGroupBox("Annotations to export")
        column = QtWidgets.QVBoxLayout(box)
        self.group, self.options = source_buttons(self.choices, column, self)
        self.group.buttonToggled.connect(self._update)
        return box

    def _setup_folder(self, folder: Path) -> QtWidgets.QGroupBox:
        box = QtWidgets.QGroupBox("Into the folder")
        column = QtWidgets.QVBoxLayout(box)
        row = QtWidgets.QHBoxLayout()
        self.folder = QtWidgets.QLineEdit(str(folder))
        self.folder.setObjectName("export-folder")
        self.browse = QtWidgets.QPushButton("Browse…")
        self.browse.clicked.connect(self._browse)
        row.addWidget(self.folder, 1)
        row.addWidget(self.browse)
        column.addLayout(row)
        self.note = QtWidgets.QLabel()
        self.note.setWordWrap(True)
        column.addWidget(self.note)
        self.folder.textChanged.connect(self._update)
        return box

    # -- the answer as it stands ------------------------------------------------------------------------------------
    def choose(self, source: ExportSource) -> None:
        number = next(i for i, c in enumerate(self.choices) if c.source == source)
        self.options[number].setChecked(True)

    def source(self) -> ExportSource | None:
        number = self.group.checkedId()
        return self.choices[number].source if number >= 0 else None

    def chosen_folder(self) -> Path:
        return Path(self.folder.text().strip()).expanduser()

    def browse_start(self) -> Path:
        """Where Browse opens: the folder typed (or its nearest existing parent), else the user's Documents."""
        documents = documents_folder()
        return nearest_folder(self.chosen_folder(), documents) if self.folder.text().strip() else documents

    def _browse(self) -> None:
        chosen = QtWidgets.QFileDialog.getExistingDirectory(self, "Export for labelme into folder",
                                                            str(self.browse_start()))
        if chosen:
            self.folder.setText(str(Path(chosen)))

    def _update(self, *_) -> None:
        self.problem.clear()
        self.problem.hide()
        self.note.setText(self._folder_note())
        self.buttons.button(Button.Ok).setEnabled(self.source() is not None and bool(self.folder.text().strip()))

    def _folder_note(self) -> str:
        text = self.folder.text().strip()
        if not text:
            return "Choose a folder."
        folder = self.chosen_folder()
        if not folder.is_absolute():
            return "Give the full path of the folder, or choose it with Browse…"
        if folder.is_dir():
            if any(folder.iterdir()):
                return "The folder is not empty: files of the same names in it are replaced."
            return "The folder is empty."
        if folder.exists():
            return "This is a file, not a folder."
        existing = next((parent for parent in folder.parents if parent.exists()), None)
        if existing is not None and not existing.is_dir():
            return "Part of this path is a file, not a folder."
        return "The folder does not exist yet: it will be created (with the folders above it)."

    def accept(self) -> None:
        """Create the folder and check it can be written before closing; otherwise say why and stay open."""
        source = self.source()
        if source is None:
            return
        try:
            folder = prepare_export_folder(self.chosen_folder(), self.study)
        except VertebraReviewError as error:
            self.problem.setText(f"{error}")
            self.problem.show()
            return
        self.request = ExportRequest(folder, source)
        super().accept()


def ask_export(parent: QtWidgets.QWidget | None, study: Study, choices: list[SourceChoice],
               folder: Path) -> ExportRequest | None:
    """Where to export and whose annotations, with the folder made; None when the export is cancelled."""
    dialog = ExportDialog(study, choices, folder, parent=parent)
    try:
        if dialog.exec() != QtWidgets.QDialog.DialogCode.Accepted:
            return None
        return dialog.request
    finally:
        dialog.deleteLater()


def source_buttons(choices: Sequence[SourceChoice], column: QtWidgets.QBoxLayout, parent: QtWidgets.QWidget,
                   ) -> tuple[QtWidgets.QButtonGroup, list[QtWidgets.QRadioButton]]:
    """One radio button per source in ``column`` (a source with no slices greyed out), the first usable one
    checked: the export's and the PACS send's choice of whose annotations."""
    group = QtWidgets.QButtonGroup(parent)
    options: list[QtWidgets.QRadioButton] = []
    for number, choice in enumerate(choices):
        button = QtWidgets.QRadioButton(choice_text(choice))
        button.setObjectName(f"source-{choice.source.kind}-{choice.source.name or ''}")
        button.setEnabled(choice.slices > 0)
        group.addButton(button, number)
        options.append(button)
        column.addWidget(button)
    first = next((b for b in options if b.isEnabled()), None)
    if first is not None:
        first.setChecked(True)
    return group, options

"""Asking, before an import, whose annotations its LabelMe files are: the reader's own (the default), a reader the
files name, each file's own, or a separate reader. What blinding will then hide is said in the dialog."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6 import QtWidgets

from core.errors import VertebraReviewError
from core.paths import check_name
from core.review.opening import LabelmeInSource
from core.study.layout import DEFAULT_READER

MINE, EACH_FILE, SEPARATE = "mine", "each-file", "separate"
_NAMES_OFFERED = 5


@dataclass(frozen=True)
class ImportReader:
    """The answer: the reader the annotations go to; None for the reader each file names (else ``imported``)."""

    reader: str | None


def _files_word(count: int) -> str:
    return f"{count} file{'s' if count != 1 else ''}"


class ImportReaderDialog(QtWidgets.QDialog):
    """``options`` maps MINE, EACH_FILE, SEPARATE and each named reader (``named:<id>``) to its radio button."""

    def __init__(self, found: LabelmeInSource, current: str, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Whose annotations are these?")
        self.found, self.current = found, current
        more = " (at least; only the first were looked at)" if found.more else ""
        intro = QtWidgets.QLabel(
            f"The files to import hold LabelMe annotations: {_files_word(found.files)}{more}. They are imported as "
            "one reader's own annotations. Whose are they?")
        intro.setWordWrap(True)
        self.group = QtWidgets.QButtonGroup(self)
        self.options: dict[str, QtWidgets.QRadioButton] = {}
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(intro)
        self._option(layout, MINE, f"Mine: reader '{current}' (you see and edit them as your own)")
        for name, count in list(found.named.items())[:_NAMES_OFFERED]:
            if name != current:
                self._option(layout, f"named:{name}", f"'{name}': the reader named in {_files_word(count)}")
        if len(found.named) > 1 or (found.named and found.unnamed):
            self._option(layout, EACH_FILE, f"Each file's own reader (files naming none: '{DEFAULT_READER}')")
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self._option(None, SEPARATE, "A separate reader:"))
        self.separate_name = QtWidgets.QLineEdit(DEFAULT_READER if current != DEFAULT_READER else "")
        self.separate_name.setPlaceholderText("reader id")
        row.addWidget(self.separate_name, 1)
        layout.addLayout(row)
        self.problem = QtWidgets.QLabel()
        self.problem.setStyleSheet("color: #D55E00")
        self.problem.setWordWrap(True)
        self.note = QtWidgets.QLabel()
        self.note.setWordWrap(True)
        layout.addWidget(self.problem)
        layout.addWidget(self.note)
        self.buttons = QtWidgets.QDialogButtonBox(
            QtWidgets.QDialogButtonBox.StandardButton.Ok | QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok).setText("Import")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.options[MINE].setChecked(True)
        self.group.buttonToggled.connect(self._update)
        self.separate_name.textChanged.connect(self._update)
        self.separate_name.textEdited.connect(lambda _: self.options[SEPARATE].setChecked(True))
        self.setMinimumWidth(520)
        self._update()

    def _option(self, layout: QtWidgets.QBoxLayout | None, key: str, text: str) -> QtWidgets.QRadioButton:
        button = QtWidgets.QRadioButton(text)
        button.setObjectName(f"reader-{key}")
        self.group.addButton(button)
        self.options[key] = button
        if layout is not None:
            layout.addWidget(button)
        return button

    def choose(self, key: str) -> None:
        self.options[key].setChecked(True)

    def chosen(self) -> ImportReader:
        """The answer as it stands (raises when a separate reader's id is not allowed)."""
        key = next(k for k, b in self.options.items() if b.isChecked())
        if key == MINE:
            return ImportReader(self.current)
        if key == EACH_FILE:
            return ImportReader(None)
        if key == SEPARATE:
            return ImportReader(check_name(self.separate_name.text().strip(), "reader"))
        return ImportReader(key.removeprefix("named:"))

    def _update(self, *_) -> None:
        try:
            reader = self.chosen().reader
            self.problem.clear()
        except VertebraReviewError as error:
            reader = ""
            self.problem.setText(str(error))
        self.problem.setVisible(bool(self.problem.text()))
        self.buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok).setEnabled(reader != "")
        self.note.setText(self._blinding_note(reader))

    def _blinding_note(self, reader: str | None) -> str:
        if reader == "":
            return ""
        if reader == self.current:
            return "They will be yours: shown as your boxes, and your edits change them."
        whose = f"reader '{reader}'" if reader else "the readers the files name"
        if not self.found.blinding:
            return (f"They will be filed under {whose}. Blinding is off in this study: you see them with M (other "
                    "readers' boxes).")
        return (f"They will be filed under {whose}. Blinding is on in this study, so you will not see them until "
                "you mark the case done (Ctrl+D): until then the slices look unread to you.")


def ask_import_reader(parent: QtWidgets.QWidget | None, found: LabelmeInSource, current: str) -> ImportReader | None:
    """Whose the LabelMe annotations of an import are, or None when the import is cancelled."""
    dialog = ImportReaderDialog(found, current, parent)
    try:
        if dialog.exec() != QtWidgets.QDialog.DialogCode.Accepted:
            return None
        return dialog.chosen()
    finally:
        dialog.deleteLater()

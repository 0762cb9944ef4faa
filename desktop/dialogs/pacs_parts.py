"""What the two PACS dialogs share: the server choice, what to say when no server is configured, one line for a
server's error, the place of a study's key file, and the progress row of a background job (bar, text, Cancel)."""

from __future__ import annotations

import html
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from core.pacs.servers import PacsServer
from core.progress import Progress
from desktop.dialogs.messages import error_text

PROBLEM_STYLE = "color: #D55E00"
#: What each stage of a PACS job is, for people.
STAGES = {"query": "Asking the server", "retrieve": "Downloading", "import": "Importing",
          "save": "Saving your last edits", "send": "Sending"}




def problem_text(server: PacsServer, doing: str, error: BaseException) -> str:
    """``Search on web failed: server web (http://…): QIDO-RS …: cannot connect …``: the server is named once."""
    text = error_text(error)
    if server.name not in text:
        text = f"server {server.name} ({server.address}): {text}"
    return f"{doing} on {server.name} failed: {text}"


def no_servers_label(servers_file: Path | None, *, object_name: str) -> QtWidgets.QLabel:
    """How to add a server, in place of a form that could not be used."""
    where = f" The list is kept in <code>{html.escape(str(servers_file))}</code>." if servers_file else ""
    label = QtWidgets.QLabel(
        "<p><b>No DICOM server is configured yet.</b></p>"
        "<p>Add one in a terminal, then choose this again:</p>"
        "<pre>vertebra-review pacs add NAME --url https://pacs.example.org/dicom-web --user YOU --password-prompt\n"
        "vertebra-review pacs add NAME --host HOST --port 104 --ae AE-TITLE</pre>"
        "<p>The first is a DICOMweb server, the second a DIMSE one; <code>vertebra-review pacs test NAME</code> "
        f"checks the connection. Passwords go to the system keyring, never into a file.{where}</p>")
    label.setObjectName(object_name)
    label.setWordWrap(True)
    label.setAlignment(QtCore.Qt.AlignmentFlag.AlignTop | QtCore.Qt.AlignmentFlag.AlignLeft)
    label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def server_combo(servers: list[PacsServer]) -> QtWidgets.QComboBox:
    """One entry per server, ``name — address``, holding the server."""
    combo = QtWidgets.QComboBox()
    combo.setObjectName("pacs-server")
    for server in servers:
        combo.addItem(f"{server.name} — {server.address}", server)
    return combo


def problem_label(object_name: str) -> QtWidgets.QLabel:
    label = QtWidgets.QLabel()
    label.setObjectName(object_name)
    label.setStyleSheet(PROBLEM_STYLE)
    label.setWordWrap(True)
    label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
    label.hide()
    return label


class JobProgress(QtWidgets.QWidget):
    """A background job as it goes: a bar, what it is doing, and Cancel (``cancelRequested``)."""

    cancelRequested = QtCore.Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        row = QtWidgets.QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.bar = QtWidgets.QProgressBar()
        self.bar.setObjectName("pacs-progress")
        self.text = QtWidgets.QLabel()
        self.text.setObjectName("pacs-progress-text")
        self.text.setMinimumWidth(260)
        self.cancel = QtWidgets.QPushButton("Cancel")
        self.cancel.setObjectName("pacs-cancel")
        self.cancel.clicked.connect(self.cancelRequested)
        row.addWidget(self.bar, 1)
        row.addWidget(self.text, 1)
        row.addWidget(self.cancel)
        self.hide()

    def start(self, text: str) -> None:
        self.bar.setRange(0, 0)  # busy until the first step says how many
        self.text.setText(text)
        self.cancel.setEnabled(True)
        self.show()

    def step(self, progress: Progress) -> None:
        if progress.total:
            self.bar.setRange(0, progress.total)
            self.bar.setValue(progress.step)
        else:
            self.bar.setRange(0, 0)
        doing = STAGES.get(progress.stage, progress.stage)
        counted = f" {progress.step} of {progress.total}" if progress.total > 1 else ""
        note = progress.message if progress.stage != "retrieve" or not progress.step else ""  # not each UID
        self.text.setText(f"{doing}{counted}" + (f" ({note})" if note else ""))

    def stop(self) -> None:
        self.hide()

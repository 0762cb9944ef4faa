"""File › Send results to PACS…: whose results (your reading, the consensus or a model, each with its slices), to
which server, sent in the background as one DICOM SR per case beside the original images; then what was stored,
and what was already there ("unchanged"). A study that was not retrieved from a PACS has no DICOM key (the original
UIDs a report must name): the dialog says so and offers nothing to send."""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from core.pacs.references import dicom_key_path
from core.pacs.send import SendReport, send_results
from core.pacs.servers import PacsServer
from core.progress import Progress, ProgressGenerator
from core.review.export import ExportSource, SourceChoice
from core.study.layout import Study
from desktop.dialogs.export_dialog import source_buttons
from desktop.dialogs.pacs_parts import JobProgress, no_servers_label, problem_label, problem_text, server_combo
from desktop.workers import run_job

Role = QtWidgets.QDialogButtonBox.ButtonRole


def send_job(server: PacsServer, study_root: Path, source: ExportSource, key_file: Path,
             flush: Callable[[], object] | None = None) -> ProgressGenerator[SendReport]:
    """Wait for the reader's last edits to be on disk (``flush``), then send (runs on a worker thread)."""
    if flush is not None:
        yield Progress("save", 0, 1)
        flush()
    return (yield from send_results(server, study_root, source, key_file))


def result_text(server: PacsServer, report: SendReport) -> str:
    """What was stored, what was there already, and what was left out, one line each."""
    stored = [entry for entry in report.sent if not entry.unchanged]
    lines = []
    if stored:
        lines.append(f"Stored {len(stored)} report{'s' if len(stored) != 1 else ''} (DICOM SR) on {server.name}: "
                     + ", ".join(f"{e.case} ({e.vertebrae} vertebrae"
                                 + (f", beside {e.earlier} earlier" if e.earlier else "") + ")" for e in stored) + ".")
    for entry in report.sent:
        if entry.unchanged:
            lines.append(f"{entry.case}: unchanged, already on {server.name} (not sent again).")
    for case, why in report.skipped:
        lines.append(f"Left out {case}: {why}.")
    return "\n".join(lines)


class PacsSendDialog(QtWidgets.QDialog):
    """``sent(SendReport)`` after a send that stored or found every report it built; ``failed(str)`` with the line
    shown otherwise. ``refusal`` is the reason nothing can be sent from here (no DICOM key), else None."""

    sent = QtCore.Signal(object)
    failed = QtCore.Signal(str)

    def __init__(self, servers: list[PacsServer], study: Study, choices: list[SourceChoice], key_file: Path, *,
                 flush: Callable[[], object] | None = None, unsaved: int = 0, servers_file: Path | None = None,
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Send results to PACS")
        self.servers, self.study, self.choices, self.key_file = servers, study, choices, key_file
        self._flush = flush
        self._worker = None
        layout = QtWidgets.QVBoxLayout(self)
        self.refusal = self._refusal()
        if self.refusal is not None or not servers:
            layout.addWidget(self.refusal if self.refusal is not None
                             else no_servers_label(servers_file, object_name="pacs-no-servers"))
            close = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Close)
            close.rejected.connect(self.reject)
            layout.addWidget(close)
            self.setMinimumWidth(620)
            return
        intro = QtWidgets.QLabel(
            f"Each case of the study <b>{html.escape(study.settings.name)}</b> is sent as one DICOM Structured Report "
            "(TID 1500): per vertebra its level, findings, probabilities and box, referencing the original images, "
            "so that it is stored beside them. Results sent before and not changed are not sent again.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        form = QtWidgets.QFormLayout()
        self.server = server_combo(servers)
        form.addRow("Server", self.server)
        layout.addLayout(form)
        layout.addWidget(self._setup_sources(unsaved))
        self.progress = JobProgress()
        self.progress.cancelRequested.connect(self.cancel)
        layout.addWidget(self.progress)
        self.result = QtWidgets.QLabel()
        self.result.setObjectName("pacs-send-result")
        self.result.setWordWrap(True)
        self.result.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.result.hide()
        layout.addWidget(self.result)
        self.problem = problem_label("pacs-problem")
        layout.addWidget(self.problem)
        self.buttons = QtWidgets.QDialogButtonBox()
        self.send_button = self.buttons.addButton("Send", Role.AcceptRole)
        self.send_button.setObjectName("pacs-send")
        self.send_button.clicked.connect(self.send)
        self.close_button = self.buttons.addButton(QtWidgets.QDialogButtonBox.StandardButton.Close)
        self.close_button.clicked.connect(self.reject)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(620)
        self._update()

    def _refusal(self) -> QtWidgets.QLabel | None:
        key = dicom_key_path(self.key_file)
        if key.is_file():
            return None
        label = QtWidgets.QLabel(
            f"<p><b>The results of {html.escape(self.study.settings.name)} cannot be sent to a PACS.</b></p>"
            f"<p>This study has no DICOM key (<code>{html.escape(str(key))}</code>). A report must name the "
            "original study, series and images so that it lands beside them, and only a study retrieved from a "
            "PACS knows them: one opened with File › Open from PACS…, or made with "
            "<code>vertebra-review pacs get</code>. The images in the study are anonymised copies.</p>"
            "<p>Nothing was sent.</p>")
        label.setObjectName("pacs-no-key")
        label.setAlignment(QtCore.Qt.AlignmentFlag.AlignTop | QtCore.Qt.AlignmentFlag.AlignLeft)
        label.setWordWrap(True)
        label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        return label

    def _setup_sources(self, unsaved: int) -> QtWidgets.QGroupBox:
        box = QtWidgets.QGroupBox("Results to send")
        column = QtWidgets.QVBoxLayout(box)
        self.group, self.options = source_buttons(self.choices, column, self)
        if unsaved:
            note = QtWidgets.QLabel(f"{unsaved} slice(s) of your reading could not be saved in the study; they are "
                                    "not sent. Export them (File menu) and fix the study folder first.")
            note.setWordWrap(True)
            column.addWidget(note)
        self.group.buttonToggled.connect(self._update)
        return box

    # -- the answer as it stands ------------------------------------------------------------------------------------
    def chosen_server(self) -> PacsServer:
        return self.server.currentData()

    def source(self) -> ExportSource | None:
        number = self.group.checkedId()
        return self.choices[number].source if number >= 0 else None

    def choose(self, source: ExportSource) -> None:
        number = next(i for i, c in enumerate(self.choices) if c.source == source)
        self.options[number].setChecked(True)

    @property
    def busy(self) -> bool:
        return self._worker is not None

    def _update(self, *_) -> None:
        self.send_button.setEnabled(not self.busy and self.source() is not None)
        self.server.setEnabled(not self.busy)
        for button, choice in zip(self.options, self.choices, strict=True):
            button.setEnabled(not self.busy and choice.slices > 0)

    # -- send -------------------------------------------------------------------------------------------------------
    def send(self) -> None:
        source = self.source()
        if self.busy or source is None:
            return
        server = self.chosen_server()
        self.problem.hide()
        self.result.hide()
        self.progress.start(f"Sending to {server.name} …")
        self._worker = run_job(
            send_job(server, self.study.root, source, self.key_file, self._flush),
            on_progress=self.progress.step,
            on_result=lambda report: self._on_sent(server, source, report),
            on_error=lambda error: self._on_failed(problem_text(server, "Send", error)),
            on_aborted=lambda: self._on_failed("Sending cancelled: the reports stored before it stay on the server; "
                                               "sending again stores only the others."),
            on_finished=self._on_finished, owner=self)
        self._update()

    def _on_sent(self, server: PacsServer, source: ExportSource, report: SendReport) -> None:
        if not report.sent:
            why = result_text(server, report) or f"no case has results of {source.describe()}."
            self._on_failed(f"Nothing was sent to {server.name}.\n{why}")
            return
        self.result.setText(result_text(server, report))
        self.result.show()
        self.sent.emit(report)

    def _on_failed(self, text: str) -> None:
        self.problem.setText(text)
        self.problem.show()
        self.failed.emit(text)

    def _on_finished(self) -> None:
        self._worker = None
        self.progress.stop()
        self._update()

    def cancel(self) -> None:
        if self._worker is not None:
            self._worker.quit()
            self.progress.cancel.setEnabled(False)

    def reject(self) -> None:
        self.cancel()
        super().reject()

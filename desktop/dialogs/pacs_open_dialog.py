"""File › Open from PACS…: a query form (server, patient ID, accession, study dates, modality), Search in the
background, the studies found in a table, and Retrieve of the chosen one into a study folder (through the anonymising
import, with progress and Cancel; a second try resumes the download). Nothing here waits on the network: searches
and retrievals run on worker threads, and a server's error is one line naming the server."""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtWidgets

from core.pacs.connection import connect
from core.pacs.errors import PacsError
from core.pacs.query import StudyMatch, StudyQuery, parse_date_range
from core.pacs.references import default_key_file
from core.pacs.retrieve import RetrieveReport, retrieve_study
from core.pacs.servers import PacsServer
from core.study.importer import ImportOptions
from core.study.layout import Study
from desktop.dialogs.export_dialog import documents_folder, nearest_folder
from desktop.dialogs.pacs_parts import (
    JobProgress,
    no_servers_label,
    problem_label,
    problem_text,
    server_combo,
)
from desktop.workers import run_in_background, run_job

COLUMNS = ("Study date", "Description", "Patient ID", "Accession", "Modalities", "Series / instances")
Role = QtWidgets.QDialogButtonBox.ButtonRole


def find_studies(server: PacsServer, query: StudyQuery) -> list[StudyMatch]:
    """The studies that match, newest first (runs on a worker thread)."""
    client = connect(server)
    try:
        found = client.find_studies(query)
    finally:
        client.close()
    return sorted(found, key=lambda study: study.study_date, reverse=True)


def _date(text: str) -> str:
    return f"{text[:4]}-{text[4:6]}-{text[6:8]}" if len(text) == 8 and text.isdigit() else text


def _counts(study: StudyMatch) -> str:
    return f"{'?' if study.series is None else study.series} / {'?' if study.instances is None else study.instances}"


class PacsOpenDialog(QtWidgets.QDialog):
    """``retrieved(Path, RetrieveReport)`` once a study is in its folder; ``searched(int)`` after each search (how
    many studies were found); ``failed(str)`` with the line shown when a search or a retrieval fails."""

    retrieved = QtCore.Signal(object, object)
    searched = QtCore.Signal(int)
    failed = QtCore.Signal(str)

    def __init__(self, servers: list[PacsServer], study_folder: Path, *, servers_file: Path | None = None,
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Open from PACS")
        self.servers = servers
        self.matches: list[StudyMatch] = []
        self._worker = None
        self._retrieving = False
        self._search_number = 0
        layout = QtWidgets.QVBoxLayout(self)
        if not servers:
            layout.addWidget(no_servers_label(servers_file, object_name="pacs-no-servers"))
            close = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Close)
            close.rejected.connect(self.reject)
            layout.addWidget(close)
            self.setMinimumWidth(620)
            return
        layout.addWidget(self._setup_query())
        self.found = QtWidgets.QLabel("Search to list the studies on the server.")
        self.found.setObjectName("pacs-found")
        layout.addWidget(self.found)
        layout.addWidget(self._setup_table(), 1)
        layout.addWidget(self._setup_target(study_folder))
        self.problem = problem_label("pacs-problem")
        layout.addWidget(self.problem)
        self.progress = JobProgress()
        self.progress.cancelRequested.connect(self.cancel)
        layout.addWidget(self.progress)
        self.buttons = QtWidgets.QDialogButtonBox()
        self.retrieve_button = self.buttons.addButton("Retrieve and open", Role.ApplyRole)
        self.retrieve_button.setObjectName("pacs-retrieve")
        self.retrieve_button.clicked.connect(self.retrieve)
        self.close_button = self.buttons.addButton(QtWidgets.QDialogButtonBox.StandardButton.Close)
        self.close_button.clicked.connect(self.reject)
        layout.addWidget(self.buttons)
        self.resize(920, 640)
        self._update()

    # -- setup ------------------------------------------------------------------------------------------------------
    def _setup_query(self) -> QtWidgets.QGroupBox:
        box = QtWidgets.QGroupBox("Find studies")
        form = QtWidgets.QFormLayout(box)
        self.server = server_combo(self.servers)
        form.addRow("Server", self.server)
        self.patient = self._field("pacs-patient", "any patient")
        self.accession = self._field("pacs-accession", "any accession number")
        form.addRow("Patient ID", self.patient)
        form.addRow("Accession", self.accession)
        form.addRow("Study date", self._setup_dates())
        self.modality = self._field("pacs-modality", "any modality")
        self.modality.setText("CT")
        self.modality.setMaximumWidth(120)
        self.search_button = QtWidgets.QPushButton("Search")
        self.search_button.setObjectName("pacs-search")
        self.search_button.setDefault(True)
        self.search_button.clicked.connect(self.search)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.modality)
        row.addStretch(1)
        row.addWidget(self.search_button)
        form.addRow("Modality", row)
        return box

    def _field(self, name: str, placeholder: str) -> QtWidgets.QLineEdit:
        field = QtWidgets.QLineEdit()
        field.setObjectName(name)
        field.setPlaceholderText(placeholder)
        field.returnPressed.connect(self.search)
        return field

    def _setup_dates(self) -> QtWidgets.QWidget:
        holder = QtWidgets.QWidget()
        row = QtWidgets.QHBoxLayout(holder)
        row.setContentsMargins(0, 0, 0, 0)
        self.use_dates = QtWidgets.QCheckBox("from")
        self.use_dates.setObjectName("pacs-use-dates")
        today = QtCore.QDate.currentDate()
        self.date_from, self.date_to = QtWidgets.QDateEdit(today.addYears(-1)), QtWidgets.QDateEdit(today)
        for edit, name in ((self.date_from, "pacs-date-from"), (self.date_to, "pacs-date-to")):
            edit.setObjectName(name)
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
            edit.setEnabled(False)
            self.use_dates.toggled.connect(edit.setEnabled)
        row.addWidget(self.use_dates)
        row.addWidget(self.date_from)
        row.addWidget(QtWidgets.QLabel("to"))
        row.addWidget(self.date_to)
        row.addStretch(1)
        return holder

    def _setup_table(self) -> QtWidgets.QTableWidget:
        self.table = QtWidgets.QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("pacs-results")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QtWidgets.QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._update)
        self.table.doubleClicked.connect(lambda _index: self.retrieve())
        return self.table

    def _setup_target(self, folder: Path) -> QtWidgets.QGroupBox:
        box = QtWidgets.QGroupBox("Retrieve into the study")
        column = QtWidgets.QVBoxLayout(box)
        row = QtWidgets.QHBoxLayout()
        self.folder = QtWidgets.QLineEdit(str(folder))
        self.folder.setObjectName("pacs-study-folder")
        self.folder.textChanged.connect(self._update)
        self.browse = QtWidgets.QPushButton("Browse…")
        self.browse.clicked.connect(self._browse)
        row.addWidget(self.folder, 1)
        row.addWidget(self.browse)
        column.addLayout(row)
        self.sagittal = QtWidgets.QCheckBox("Reformat axial and coronal series to sagittal slices (as the import does)")
        self.sagittal.setChecked(True)
        column.addWidget(self.sagittal)
        self.note = QtWidgets.QLabel()
        self.note.setObjectName("pacs-folder-note")
        self.note.setWordWrap(True)
        column.addWidget(self.note)
        return box

    # -- the answer as it stands ------------------------------------------------------------------------------------
    def chosen_server(self) -> PacsServer:
        return self.server.currentData()

    def chosen_folder(self) -> Path:
        return Path(self.folder.text().strip()).expanduser()

    def chosen_study(self) -> StudyMatch | None:
        rows = self.table.selectionModel().selectedRows()
        return self.matches[rows[0].row()] if rows else None

    @property
    def busy(self) -> bool:
        return self._worker is not None

    def query(self) -> StudyQuery:
        """The form as a query; raises PacsError for dates that end before they start."""
        dates = None
        if self.use_dates.isChecked():
            dates = parse_date_range(f"{self.date_from.date().toString('yyyyMMdd')}-"
                                     f"{self.date_to.date().toString('yyyyMMdd')}")
        return StudyQuery(patient_id=self.patient.text().strip() or None,
                          accession=self.accession.text().strip() or None, date=dates,
                          modality=self.modality.text().strip().upper() or None)

    def _browse(self) -> None:
        start = nearest_folder(self.chosen_folder(), documents_folder()) if self.folder.text().strip() \
            else documents_folder()
        chosen = QtWidgets.QFileDialog.getExistingDirectory(self, "Retrieve into the study folder", str(start))
        if chosen:
            self.folder.setText(str(Path(chosen)))

    def _update(self, *_) -> None:
        self.note.setText(self._folder_note())
        self.search_button.setEnabled(not self.busy)
        self.server.setEnabled(not self.busy)
        self.retrieve_button.setEnabled(not self.busy and self.chosen_study() is not None
                                        and self._folder_problem() is None)

    def _folder_problem(self) -> str | None:
        if not self.folder.text().strip():
            return "Choose the study folder."
        folder = self.chosen_folder()
        if not folder.is_absolute():
            return "Give the full path of the study folder, or choose it with Browse…"
        if folder.exists() and not folder.is_dir():
            return "This is a file, not a folder."
        if folder.is_dir() and not Study.is_study(folder) and any(folder.iterdir()):
            return "This folder holds other files and is not a study: choose a new or empty folder, or a study."
        return None

    def _folder_note(self) -> str:
        problem = self._folder_problem()
        if problem is not None:
            return problem
        folder = self.chosen_folder()
        what = ("The study exists: the retrieved case is added to it." if Study.is_study(folder)
                else "A new study is made in this folder.")
        return (f"{what} The images are anonymised; the key back to the patient and the original UIDs (needed to "
                f"send results back) goes beside it, outside the study: {default_key_file(folder)}")

    # -- search -----------------------------------------------------------------------------------------------------
    def search(self) -> None:
        if self.busy:
            return
        server = self.chosen_server()
        try:
            query = self.query()
        except PacsError as error:  # dates that end before they start
            self._show_problem(f"{error}")
            return
        self._clear_problem()
        self._search_number += 1
        number = self._search_number
        self.progress.start(f"Searching {server.name} …")
        self._worker = run_in_background(
            find_studies, server, query,
            on_result=lambda found: self._on_found(number, found, query),
            on_error=lambda error: self._on_failed(number, problem_text(server, "Search", error)),
            on_finished=lambda: self._on_finished(number), owner=self)
        self._update()

    def _on_found(self, number: int, found: list[StudyMatch], query: StudyQuery) -> None:
        if number != self._search_number:
            return  # cancelled
        self.matches = found
        self.table.setRowCount(0)
        for study in found:
            row = self.table.rowCount()
            self.table.insertRow(row)
            cells = (_date(study.study_date), study.description, study.patient_id, study.accession,
                     "/".join(study.modalities), _counts(study))
            for column, text in enumerate(cells):
                item = QtWidgets.QTableWidgetItem(text)
                item.setToolTip(f"Study instance UID {study.study_uid}")
                self.table.setItem(row, column, item)
        more = f" (the first {query.limit}: narrow the search to see others)" if len(found) >= query.limit else ""
        self.found.setText(f"{len(found)} stud{'y' if len(found) == 1 else 'ies'} found on "
                           f"{self.chosen_server().name}{more}." if found else
                           f"No study on {self.chosen_server().name} matches.")
        if found:
            self.table.selectRow(0)
        self.searched.emit(len(found))

    def _on_failed(self, number: int, text: str) -> None:
        if number != self._search_number:
            return
        self._show_problem(text)
        self.failed.emit(text)

    def _on_finished(self, number: int) -> None:
        if number == self._search_number or self._worker is None:
            self._worker, self._retrieving = None, False
            self.progress.stop()
            self._update()

    # -- retrieve ---------------------------------------------------------------------------------------------------
    def retrieve(self) -> None:
        study = self.chosen_study()
        if self.busy or study is None or self._folder_problem() is not None:
            return
        server, folder = self.chosen_server(), self.chosen_folder()
        self._clear_problem()
        self._search_number += 1  # a retrieval is not a search: nothing of an earlier search comes back now
        number = self._search_number
        self.progress.start(f"Retrieving from {server.name} …")
        self._retrieving = True
        job = retrieve_study(server, study.study_uid, folder, default_key_file(folder),
                             options=ImportOptions(sagittal=self.sagittal.isChecked()))
        self._worker = run_job(
            job, on_progress=self.progress.step,
            on_result=lambda report: self._on_retrieved(folder, report),
            on_error=lambda error: self._on_failed(number, problem_text(server, "Retrieve", error)),
            on_aborted=lambda: self._show_problem(
                "Retrieval cancelled. What was downloaded is kept: retrieving the study again resumes there, and "
                "the study holds no part of it."),
            on_finished=lambda: self._on_finished(number), owner=self)
        self._update()

    def _on_retrieved(self, folder: Path, report: RetrieveReport) -> None:
        imported = report.imported
        if imported is None or (not imported.cases and not imported.duplicates):
            reasons = "; ".join(f"{what}: {why}" for what, why in (imported.skipped if imported else [])[:2])
            self._show_problem(f"Nothing could be imported from {self.chosen_server().name}"
                               f"{': ' + reasons if reasons else ''}.")
            return
        self.retrieved.emit(folder, report)
        self.accept()

    # -- cancel and close -------------------------------------------------------------------------------------------
    def cancel(self) -> None:
        """Stop a retrieval at its next step; a search (one request, bounded by the server's timeout) is left to
        end on its own and its answer is dropped."""
        worker = self._worker
        if worker is None:
            return
        if self._retrieving:
            worker.quit()
            self.progress.cancel.setEnabled(False)
            return
        self._search_number += 1
        self._worker = None
        self.progress.stop()
        self._show_problem("Search cancelled.")
        self._update()

    def reject(self) -> None:
        self.cancel()
        super().reject()

    def _show_problem(self, text: str) -> None:
        self.problem.setText(text)
        self.problem.show()

    def _clear_problem(self) -> None:
        self.problem.clear()
        self.problem.hide()

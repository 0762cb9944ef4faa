"""The co-annotation session as a whole: who is consulting (the readers who agree to each decision), how many
disagreements are decided and how many slices are final, each reader's reading progress, the bulk acceptance of
unanimous vertebrae, and the agreement statistics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from PySide6 import QtCore, QtWidgets

from desktop.panels.reader_versions import fit_height

PROGRESS_COLUMNS = ("reader", "cases done", "annotated", "reviewed")


class ConsensusOverview(QtWidgets.QGroupBox):
    consultingChanged = QtCore.Signal()
    acceptUnanimousRequested = QtCore.Signal()
    statisticsRequested = QtCore.Signal()
    leaveRequested = QtCore.Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__("Session", parent)
        self.consulting_row = QtWidgets.QHBoxLayout()
        self.checks: dict[str, QtWidgets.QCheckBox] = {}
        self._wanted: set[str] = set()  # the readers ticked, kept while a slice they did not read is shown
        self.summary = QtWidgets.QLabel()
        self.summary.setWordWrap(True)
        self.note = QtWidgets.QLabel()
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #D55E00")
        self.progress = QtWidgets.QTableWidget(0, len(PROGRESS_COLUMNS))
        self.progress.setHorizontalHeaderLabels(PROGRESS_COLUMNS)
        self.progress.verticalHeader().setVisible(False)
        self.progress.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.progress.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.NoSelection)
        self.progress.horizontalHeader().setStretchLastSection(True)
        self.accept_unanimous = QtWidgets.QPushButton("Accept all unanimous (U)")
        self.accept_unanimous.setToolTip("Accept every undecided vertebra on which all readers agree, box and label, "
                                         "in the slices that are not final. Majorities and conflicts stay open.")
        self.statistics = QtWidgets.QPushButton("Agreement statistics…")
        self.leave = QtWidgets.QPushButton("Leave consensus mode")
        layout = QtWidgets.QVBoxLayout(self)
        form = QtWidgets.QFormLayout()
        form.addRow("Agreed by", self.consulting_row)
        layout.addLayout(form)
        layout.addWidget(self.summary)
        layout.addWidget(self.note)
        layout.addWidget(self.progress)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.accept_unanimous)
        row.addWidget(self.statistics)
        layout.addLayout(row)
        layout.addWidget(self.leave)
        self.accept_unanimous.clicked.connect(self.acceptUnanimousRequested)
        self.statistics.clicked.connect(self.statisticsRequested)
        self.leave.clicked.connect(self.leaveRequested)

    def set_readers(self, readers: Sequence[str]) -> None:
        """One box per compared reader, none ticked: who agrees is what someone ticks."""
        for box in self.checks.values():
            self.consulting_row.removeWidget(box)
            box.deleteLater()
        self.checks.clear()
        self._wanted.clear()
        for reader in readers:
            box = QtWidgets.QCheckBox(reader)
            box.setToolTip(f"Tick when {reader} agrees to the decisions (recorded as agreed by)")
            box.toggled.connect(lambda on, who=reader: self._ticked(who, on))
            self.consulting_row.addWidget(box)
            box.show()
            self.checks[reader] = box

    def _ticked(self, reader: str, on: bool) -> None:
        if self.checks[reader].isEnabled():  # a box turned off for a slice keeps the reader's wish for later ones
            (self._wanted.add if on else self._wanted.discard)(reader)
        self.consultingChanged.emit()

    def set_slice_readers(self, readers: Sequence[str] | None) -> None:
        """Only the readers of the slice shown can agree on it: the others' boxes are unticked and off (None: every
        reader's box is on)."""
        for reader, box in self.checks.items():
            read = readers is None or reader in readers
            box.blockSignals(True)
            box.setEnabled(read)
            box.setChecked(read and reader in self._wanted)
            box.blockSignals(False)
            box.setToolTip(f"Tick when {reader} agrees to the decisions (recorded as agreed by)" if read
                           else f"{reader} did not read this slice")

    def wanted(self) -> list[str]:
        """Every reader ticked, including those whose box is off for the slice shown."""
        return [reader for reader in self.checks if reader in self._wanted]

    def consulting(self) -> list[str]:
        """The readers ticked (of the slice shown)."""
        return [reader for reader, box in self.checks.items() if box.isChecked() and box.isEnabled()]

    def set_summary(self, counts: Mapping[str, int]) -> None:
        """Counts of :meth:`core.consensus.session.ConsensusSession.summary` (:mod:`core.consensus.counts`)."""
        locked = counts.get("locked", 0)
        self.summary.setText(
            f"<b>{counts.get('open', 0)} open disagreements</b> of {counts.get('disagreements', 0)}: "
            f"{counts.get('decided', 0)} decided"
            + (f", {locked} on locked slices" if locked else "")
            + f" · {counts.get('finalised', 0)} of {counts.get('slices', 0)} slices final"
            + (f" · {counts['external']} made outside this workflow (locked)" if counts.get("external") else ""))

    def set_progress(self, progress: Mapping[str, Mapping[str, int]]) -> None:
        self.progress.setRowCount(len(progress))
        for row, (reader, totals) in enumerate(progress.items()):
            cells = (reader, f"{totals['cases_done']} / {totals['cases']}",
                     f"{totals['annotated']} / {totals['slices']}", f"{totals['reviewed']}")
            for column, text in enumerate(cells):
                self.progress.setItem(row, column, QtWidgets.QTableWidgetItem(text))
        self.progress.resizeColumnsToContents()
        fit_height(self.progress)

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

    def set_readers(self, readers: Sequence[str], consulting: Sequence[str]) -> None:
        for box in self.checks.values():
            self.consulting_row.removeWidget(box)
            box.deleteLater()
        self.checks.clear()
        for reader in readers:
            box = QtWidgets.QCheckBox(reader)
            box.setChecked(reader in consulting)
            box.setToolTip(f"{reader} takes part in the decisions (recorded as agreed by)")
            box.toggled.connect(self.consultingChanged)
            self.consulting_row.addWidget(box)
            box.show()
            self.checks[reader] = box

    def consulting(self) -> list[str]:
        return [reader for reader, box in self.checks.items() if box.isChecked()]

    def set_summary(self, counts: Mapping[str, int]) -> None:
        self.summary.setText(
            f"{counts.get('disagreements', 0)} disagreements: <b>{counts.get('decided', 0)} decided</b>, "
            f"{counts.get('open', 0)} open · {counts.get('finalised', 0)} of {counts.get('slices', 0)} slices final"
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

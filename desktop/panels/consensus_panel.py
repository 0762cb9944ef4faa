"""The consensus mode's panel: the vertebra in question (where it is among the disagreements, what the readers say
side by side, the majority), how it was decided, the actions (take a reader's version, take the majority, edit,
clear), stepping through the disagreements, finalising the slice, and the session overview."""

from __future__ import annotations

from collections.abc import Mapping

from PySide6 import QtCore, QtWidgets

from core.annotations.model import disease_label
from core.consensus.coannotation import group_status_text, resolution_text
from core.consensus.session import GroupView
from core.consensus.styles import ReaderStyle
from desktop.panels.consensus_overview import ConsensusOverview
from desktop.panels.reader_versions import ReaderVersionsTable
from desktop.panels.result_editor import ResultEditor

WARN = "color: #D55E00"


class ConsensusPanel(QtWidgets.QWidget):
    stepRequested = QtCore.Signal(int)
    takeMajorityRequested = QtCore.Signal()
    editRequested = QtCore.Signal()
    clearRequested = QtCore.Signal()
    finaliseRequested = QtCore.Signal()
    reopenRequested = QtCore.Signal()
    includeDecidedChanged = QtCore.Signal(bool)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.position = QtWidgets.QLabel("Consensus mode: opening …")
        self.position.setWordWrap(True)
        self.status = QtWidgets.QLabel()
        self.status.setWordWrap(True)
        self.versions = ReaderVersionsTable()
        self.majority = QtWidgets.QLabel()
        self.majority.setWordWrap(False)
        self.take_majority = QtWidgets.QPushButton("Take the majority (M)")
        self.decision = QtWidgets.QLabel()
        self.decision.setWordWrap(True)
        self.edit = QtWidgets.QPushButton("Edit the result (E)")
        self.clear = QtWidgets.QPushButton("Clear the decision (Del)")
        self.editor = ResultEditor()
        self.editor.hide()
        self.previous = QtWidgets.QPushButton("◀ Previous (PgUp)")
        self.next = QtWidgets.QPushButton("Next (PgDown) ▶")
        self.include_decided = QtWidgets.QCheckBox("Include decided ones")
        self.slice_state = QtWidgets.QLabel()
        self.slice_state.setWordWrap(True)
        self.finalise = QtWidgets.QPushButton("Finalise the slice (Ctrl+Enter)")
        self.reopen = QtWidgets.QPushButton("Reopen the slice")
        self.overview = ConsensusOverview()
        self._setup_layout()
        self._connect()

    def _setup_layout(self) -> None:
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.position)
        layout.addWidget(self.status)
        layout.addWidget(self.versions)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.majority, 1)
        row.addWidget(self.take_majority)
        layout.addLayout(row)
        layout.addWidget(self.decision)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.edit)
        row.addWidget(self.clear)
        layout.addLayout(row)
        layout.addWidget(self.editor)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.previous)
        row.addWidget(self.next)
        row.addWidget(self.include_decided)
        layout.addLayout(row)
        group = QtWidgets.QGroupBox("Slice")
        inner = QtWidgets.QVBoxLayout(group)
        inner.addWidget(self.slice_state)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.finalise)
        row.addWidget(self.reopen)
        inner.addLayout(row)
        layout.addWidget(group)
        layout.addWidget(self.overview)
        layout.addStretch(1)

    def _connect(self) -> None:
        self.previous.clicked.connect(lambda: self.stepRequested.emit(-1))
        self.next.clicked.connect(lambda: self.stepRequested.emit(1))
        self.take_majority.clicked.connect(self.takeMajorityRequested)
        self.edit.clicked.connect(self.editRequested)
        self.clear.clicked.connect(self.clearRequested)
        self.finalise.clicked.connect(self.finaliseRequested)
        self.reopen.clicked.connect(self.reopenRequested)
        self.include_decided.toggled.connect(self.includeDecidedChanged)

    # -- content ----------------------------------------------------------------------------------------------------
    def show_group(self, view: GroupView | None, styles: Mapping[str, ReaderStyle], *, position: str,
                   editing: bool) -> None:
        """The vertebra in question (None: nothing to show on this slice)."""
        self.position.setText(position)
        if view is None:
            self.status.clear()
            self.versions.setRowCount(0)
            self.majority.clear()
            self.decision.clear()
            for button in (self.take_majority, self.edit, self.clear):
                button.setEnabled(False)
            return
        locked = view.locked
        conflict = view.majority is None
        self.status.setText(group_status_text(view) + ("  ·  the slice is final: reopen it to change it" if locked
                                                       else ""))
        self.status.setStyleSheet(WARN if conflict else "")
        resolution = view.resolution
        chosen = resolution.reader if resolution is not None and resolution.method == "reader" else None
        self.versions.show_versions(view.group.versions, styles,
                                    voters=view.majority.voters if view.majority else (), chosen=chosen,
                                    enabled=not locked and not editing)
        if conflict:
            self.majority.setText("No majority: take one reader's version, or edit the result.")
            self.majority.setStyleSheet(WARN)
        else:
            said = disease_label(view.majority.diseases) if view.majority.present else "no vertebra here"
            self.majority.setText(f"Majority ({', '.join(view.majority.voters)}): <b>{said}</b>")
            self.majority.setStyleSheet("")
        self.take_majority.setEnabled(not conflict and not locked and not editing)
        self.decision.setText(("<b>Decided:</b> " if resolution is not None and resolution.confirmed else "")
                              + resolution_text(resolution))
        self.edit.setEnabled(not locked and not editing)
        self.clear.setEnabled(not locked and resolution is not None and not editing)

    def show_slice(self, text: str, *, finalised: bool, locked: bool) -> None:
        self.slice_state.setText(text)
        self.finalise.setEnabled(not locked)
        self.reopen.setEnabled(locked)
        self.slice_state.setStyleSheet("color: #009E73" if finalised else "")

    def show_refusal(self, text: str) -> None:
        self.status.setText(text)
        self.status.setStyleSheet(WARN)

"""The case list: cases with their slices, each slice with its status and findings; filters above it.

Selecting a slice (mouse or arrow keys) emits ``sliceChosen``. Hidden (filtered-out) slices are skipped by
:meth:`neighbour`, which the window uses for PageUp/PageDown and for "reviewed, next".

What blinding hides of a case (other readers' annotations, the consensus) is said where the reader looks: on the
case's row, in the slices' tooltips, and in a note above the list while a slice of that case is chosen.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from PySide6 import QtCore, QtGui, QtWidgets

from core.review.filters import SliceFilter
from core.review.status import SHORTFALL_STATUSES, SliceStatus
from core.review.summary import SliceSummary
from core.study.slice_key import SliceKey, slice_key
from desktop.panels.filter_bar import FilterBar

if TYPE_CHECKING:
    from desktop.review.reading_view import HiddenAnnotations

STATUS_COLOURS = {
    SliceStatus.UNREAD: "#999999",
    SliceStatus.PRE_ANNOTATED: "#56B4E9",
    SliceStatus.MODEL_FOUND_NONE: "#0072B2",
    SliceStatus.MODEL_FOUND_FEW: "#0072B2",
    SliceStatus.IN_REVIEW: "#E69F00",
    SliceStatus.REVIEWED: "#009E73",
    SliceStatus.CONSENSUS: "#CC79A7",
}
PROBLEM_COLOUR = "#D55E00"
HIDDEN_COLOUR = "#7A5C00"
_KEY_ROLE = QtCore.Qt.ItemDataRole.UserRole


def _key(item: QtWidgets.QTreeWidgetItem) -> SliceKey | None:
    value = item.data(0, _KEY_ROLE)
    return (str(value[0]), str(value[1])) if value else None


def findings_text(summary: SliceSummary) -> str:
    codes = sorted(summary.diseases, key=lambda c: (c == "NORMAL", c))
    marks = ("?" if summary.low_confidence else "") + ("≠" if summary.disagreement else "")
    return " ".join([*codes, marks]).strip()


def status_text(summary: SliceSummary) -> str:
    """The status, or ``1/10 decided`` while the slice's consensus is not final."""
    if summary.consensus_progress is not None:
        return f"{summary.consensus_progress[0]}/{summary.consensus_progress[1]} decided"
    return summary.status.value


def status_tip(summary: SliceSummary) -> str:
    if summary.consensus_progress is not None:
        decided, vertebrae = summary.consensus_progress
        return (f"consensus in progress: {decided} of {vertebrae} vertebrae decided, not final; your own status: "
                f"{summary.status.value}")
    if summary.status in SHORTFALL_STATUSES and summary.shortfall is not None:
        return f"{summary.status.value}: {summary.shortfall.message()}"
    return summary.status.value


class CaseListPanel(QtWidgets.QWidget):
    sliceChosen = QtCore.Signal(object)  # SliceKey

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.filters = FilterBar()
        self.tree = QtWidgets.QTreeWidget()
        self.tree.setHeaderLabels(["Case / slice", "Status", "Findings"])
        self.tree.setUniformRowHeights(True)
        self.tree.setMinimumWidth(300)
        self.tree.header().setStretchLastSection(True)
        self.tree.setColumnWidth(1, self._status_width())
        self.counts = QtWidgets.QLabel()
        self.hidden_note = QtWidgets.QLabel()
        self.hidden_note.setObjectName("blinding-note")
        self.hidden_note.setWordWrap(True)
        self.hidden_note.setStyleSheet("QLabel { background: #FFF4CE; color: #3D2E00; border: 1px solid #E6C260;"
                                       " padding: 4px; }")
        self.hidden_note.hide()
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.filters)
        layout.addWidget(self.hidden_note)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.counts)
        self._items: dict[SliceKey, QtWidgets.QTreeWidgetItem] = {}
        self._cases: dict[str, QtWidgets.QTreeWidgetItem] = {}
        self._summaries: dict[SliceKey, SliceSummary] = {}
        self._filter = SliceFilter()
        self._hidden: Callable[[str], HiddenAnnotations | None] = lambda case: None
        self._silent = False
        self.tree.currentItemChanged.connect(self._on_current)
        self.filters.filterChanged.connect(self.set_filter)

    def _status_width(self) -> int:
        """Wide enough for the longest status, so that none is cut short (a problem's mark may be; see its tooltip)."""
        metrics = self.tree.fontMetrics()
        return max(metrics.horizontalAdvance(status.value) for status in SliceStatus) + 12

    # -- content ----------------------------------------------------------------------------------------------------
    def set_hidden_source(self, hidden: Callable[[str], HiddenAnnotations | None]) -> None:
        """Where to learn what blinding hides of a case (:meth:`desktop.review.reading_view.ReadingView.hidden`)."""
        self._hidden = hidden

    def set_slices(self, keys: Sequence[SliceKey], summaries: Mapping[SliceKey, SliceSummary]) -> None:
        self._silent = True
        self.tree.clear()
        self._items.clear()
        self._cases.clear()
        self._summaries = dict(summaries)
        for key in keys:
            case_item = self._cases.get(slice_key(key).case)
            if case_item is None:
                case_item = QtWidgets.QTreeWidgetItem(self.tree, [slice_key(key).case])
                self._cases[slice_key(key).case] = case_item
            item = QtWidgets.QTreeWidgetItem(case_item, [slice_key(key).slice_id])
            item.setData(0, _KEY_ROLE, key)
            self._items[key] = item
            self._paint(key)
        self.tree.expandAll()
        self.tree.resizeColumnToContents(0)
        self._silent = False
        self._apply_filter()

    def update_summaries(self, summaries: Mapping[SliceKey, SliceSummary]) -> None:
        for key, summary in summaries.items():
            if key in self._items:
                self._summaries[key] = summary
                self._paint(key)
        self._apply_filter()

    def summary(self, key: SliceKey) -> SliceSummary | None:
        return self._summaries.get(key)

    def _paint(self, key: SliceKey) -> None:
        item, summary = self._items[key], self._summaries.get(key, SliceSummary())
        item.setText(1, ("⚠ " if summary.problem else "") + status_text(summary))
        item.setForeground(1, QtGui.QBrush(QtGui.QColor(PROBLEM_COLOUR if summary.problem
                                                        else STATUS_COLOURS[summary.status])))
        item.setText(2, findings_text(summary))
        item.setToolTip(0, summary.problem or "")
        item.setToolTip(1, summary.problem or status_tip(summary))
        item.setForeground(0, QtGui.QBrush(QtGui.QColor(PROBLEM_COLOUR)) if summary.problem else QtGui.QBrush())

    def _paint_hidden(self, case: str, case_item: QtWidgets.QTreeWidgetItem) -> None:
        """Say on the case's row, and in its slices' tooltips, what blinding hides of it."""
        hidden = self._hidden(case)
        case_item.setText(2, hidden.short() if hidden else "")
        case_item.setToolTip(2, hidden.text() if hidden else "")
        case_item.setForeground(2, QtGui.QBrush(QtGui.QColor(HIDDEN_COLOUR)))
        for child in (case_item.child(i) for i in range(case_item.childCount())):
            key = _key(child)
            summary = self._summaries.get(key, SliceSummary())
            tip = summary.problem or status_tip(summary)
            said = hidden.on_slice(slice_key(key).slice_id) if hidden and key else None
            child.setToolTip(1, f"{tip}\n{said}" if said else tip)

    def _show_hidden_note(self, case: str | None) -> None:
        hidden = self._hidden(case) if case is not None else None
        self.hidden_note.setText(hidden.text() if hidden else "")
        self.hidden_note.setVisible(bool(hidden))

    # -- filtering and moving ---------------------------------------------------------------------------------------
    def set_filter(self, slice_filter: SliceFilter) -> None:
        self._filter = slice_filter
        self._apply_filter()

    def _apply_filter(self) -> None:
        shown = 0
        for key, item in self._items.items():
            visible = self._filter.matches(key, self._summaries.get(key, SliceSummary()))
            item.setHidden(not visible)
            shown += visible
        for case_item in self._cases.values():
            children = [case_item.child(i) for i in range(case_item.childCount())]
            case_item.setHidden(all(c.isHidden() for c in children))
            done = sum(self._summaries.get(_key(c), SliceSummary()).status
                       in (SliceStatus.REVIEWED, SliceStatus.CONSENSUS) for c in children)
            case_item.setText(1, f"{done}/{len(children)} reviewed")
        for case, case_item in self._cases.items():
            self._paint_hidden(case, case_item)
        self._show_hidden_note(self._current_case())
        reviewed = sum(s.status in (SliceStatus.REVIEWED, SliceStatus.CONSENSUS) for s in self._summaries.values())
        self.counts.setText(f"{shown} of {len(self._items)} slices shown · {reviewed} reviewed")
        self.filters.set_blinded_cases(len({slice_key(key).case for key, s in self._summaries.items() if s.blinded}))

    def _current_case(self) -> str | None:
        item = self.tree.currentItem()
        if item is None:
            return None
        key = _key(item)
        return slice_key(key).case if key is not None else item.text(0)

    def visible_keys(self) -> list[SliceKey]:
        return [key for key, item in self._items.items() if not item.isHidden()]

    def neighbour(self, key: SliceKey | None, delta: int) -> SliceKey | None:
        """The visible slice ``delta`` steps from ``key`` (clamped), or None when no slice is visible."""
        visible = self.visible_keys()
        if not visible:
            return None
        if key not in visible:
            return visible[0] if delta >= 0 else visible[-1]
        return visible[max(0, min(len(visible) - 1, visible.index(key) + delta))]

    def select(self, key: SliceKey) -> None:
        item = self._items.get(key)
        if item is not None:
            self._silent = True
            self.tree.setCurrentItem(item)
            self.tree.scrollToItem(item)
            self._silent = False

    def _on_current(self, current: QtWidgets.QTreeWidgetItem | None, previous) -> None:
        self._show_hidden_note(self._current_case())
        if self._silent or current is None:
            return
        key = _key(current)
        if key is None and current.childCount():  # a case: go to its first visible slice
            key = next((_key(c) for c in (current.child(i) for i in range(current.childCount()))
                        if not c.isHidden()), None)
        if key is not None:
            self.sliceChosen.emit(key)

    def focus_search(self) -> None:
        self.filters.search.setFocus()
        self.filters.search.selectAll()

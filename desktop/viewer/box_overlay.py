"""The boxes over the slice: the reader's own (editable) and the model's or the consensus (read-only, dashed).

Items are pooled and reused from slice to slice, so that switching slices only updates a few existing items.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pyqtgraph as pg
from PySide6 import QtCore

from core.annotations.model import MODEL_SOURCE, NORMAL, Box, Vertebra
from core.review.summary import is_low_confidence
from desktop.viewer.box_item import MINE, MODEL, READ_ONLY, BoxStyle, VertebraBoxItem


def call_probability(vertebra: Vertebra) -> float | None:
    """The probability behind the label: the surest of its diseases, or NORMAL's; None without probabilities."""
    if not vertebra.probabilities:
        return None
    codes = [d.value for d in vertebra.diseases] or [NORMAL]
    found = [vertebra.probabilities[c] for c in codes if c in vertebra.probabilities]
    return max(found) if found else None


def chip_text(vertebra: Vertebra) -> str:
    """``L1 · OVCF+KD 0.93``: level tag, codes, and the probability when the label is the model's own (a box a
    reader has changed keeps the model's probabilities in its data, but they no longer describe its label)."""
    probability = call_probability(vertebra) if vertebra.source == MODEL_SOURCE else None
    label = vertebra.label if probability is None else f"{vertebra.label} {probability:.2f}"
    return f"{vertebra.level} · {label}" if vertebra.level else label


class BoxOverlay:
    """``on_select(index)`` when the reader picks one of their boxes; ``on_edit(index, box, finished)`` while
    moving or resizing it (``finished`` on release)."""

    def __init__(self, view: pg.ViewBox, on_select: Callable[[int], None],
                 on_edit: Callable[[int, Box | None, bool], None]) -> None:
        self._view = view
        self._on_select, self._on_edit = on_select, on_edit
        self._mine: list[VertebraBoxItem] = []
        self._others: list[VertebraBoxItem] = []
        self._shown = (0, 0)

    def _item(self, pool: list[VertebraBoxItem], index: int) -> VertebraBoxItem:
        while len(pool) <= index:
            item = VertebraBoxItem(self._selected, self._edited)
            self._view.addItem(item, ignoreBounds=True)
            pool.append(item)
        return pool[index]

    def _selected(self, item: VertebraBoxItem) -> None:
        self._on_select(item.index)

    def _edited(self, item: VertebraBoxItem, rect: QtCore.QRectF, finished: bool) -> None:
        try:
            box = Box(rect.left(), rect.top(), rect.right(), rect.bottom())
        except ValueError:
            box = None
        self._on_edit(item.index, box, finished)

    def show(self, mine: Sequence[Vertebra], others: Sequence[Vertebra] = (), *, selected: int | None = None,
             mine_editable: bool = True, others_from_model: bool = True) -> None:
        mine_style = MINE if mine_editable else READ_ONLY
        other_style: BoxStyle = MODEL if others_from_model else READ_ONLY
        for index, vertebra in enumerate(mine):
            self._item(self._mine, index).show_vertebra(
                index, vertebra, chip_text(vertebra), mine_style,
                low_confidence=vertebra.source == MODEL_SOURCE and is_low_confidence(vertebra),  # accepted, unchanged
                selected=index == selected)
        for index, vertebra in enumerate(others):
            self._item(self._others, index).show_vertebra(
                index, vertebra, chip_text(vertebra), other_style,
                low_confidence=others_from_model and is_low_confidence(vertebra), selected=False)
        for pool, used in ((self._mine, len(mine)), (self._others, len(others))):
            for item in pool[used:]:
                item.setVisible(False)
        self._shown = (len(mine), len(others))

    def clear(self) -> None:
        self.show((), ())

    @property
    def count(self) -> int:
        return sum(self._shown)

    def mine_items(self) -> list[VertebraBoxItem]:
        return self._mine[: self._shown[0]]

    def other_items(self) -> list[VertebraBoxItem]:
        return self._others[: self._shown[1]]

"""The boxes over the slice: the reader's own (editable) and the model's or the consensus (dashed or read-only).

Items are pooled and reused from slice to slice, so that switching slices only updates a few existing items. Each
box has one label chip; a model box whose result one of the reader's boxes repeats has none (one result, one label).
The chips of each side (the reader's on the left, the others on the right) are stacked along the spine so that none
covers another, again whenever the zoom changes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence

import pyqtgraph as pg
from PySide6 import QtCore

from core.annotations.model import MODEL_SOURCE, Box, Vertebra
from core.review.confidence import ModelCall, call_probability, is_unsure
from desktop.viewer.box_item import MINE, MODEL, MODEL_VIEW, READ_ONLY, BoxStyle, VertebraBoxItem
from desktop.viewer.label_chip import LabelChip
from desktop.viewer.label_stack import stack_labels

#: Screen pixels between stacked chips.
CHIP_SPACING = 2.0


def chip_text(vertebra: Vertebra) -> str:
    """``L1 · OVCF+KD 0.93``: level tag, codes, and the probability when the label is the model's own (a box a
    reader has changed keeps the model's probabilities in its data, but they no longer describe its label)."""
    probability = call_probability(vertebra) if vertebra.source == MODEL_SOURCE else None
    label = vertebra.label if probability is None else f"{vertebra.label} {probability:.2f}"
    return f"{vertebra.level} · {label}" if vertebra.level else label


class BoxOverlay:
    """``on_select(layer, index)`` when the reader picks a box (``layer``: ``mine`` or ``other``);
    ``on_edit(layer, index, box, finished)`` while moving or resizing one (``finished`` on release)."""

    def __init__(self, view: pg.ViewBox, on_select: Callable[[str, int], None],
                 on_edit: Callable[[str, int, Box | None, bool], None]) -> None:
        self._view = view
        self._on_select, self._on_edit = on_select, on_edit
        self._mine: list[VertebraBoxItem] = []
        self._others: list[VertebraBoxItem] = []
        self._shown = (0, 0)
        self._mine_style: BoxStyle = MINE
        self._flag_unsure = True
        self._call: ModelCall | None = None
        view.sigTransformChanged.connect(self.stack_chips)

    def _item(self, pool: list[VertebraBoxItem], index: int) -> VertebraBoxItem:
        while len(pool) <= index:
            item = VertebraBoxItem("mine" if pool is self._mine else "other", self._selected, self._edited)
            self._view.addItem(item, ignoreBounds=True)
            self._view.addItem(item.chip, ignoreBounds=True)
            pool.append(item)
        return pool[index]

    def _selected(self, item: VertebraBoxItem) -> None:
        self._on_select(item.layer, item.index)

    def _edited(self, item: VertebraBoxItem, rect: QtCore.QRectF, finished: bool) -> None:
        try:
            box = Box(rect.left(), rect.top(), rect.right(), rect.bottom())
        except ValueError:
            box = None
        self._on_edit(item.layer, item.index, box, finished)

    def show(self, mine: Sequence[Vertebra], others: Sequence[Vertebra] = (), *, selected: int | None = None,
             selected_other: int | None = None, mine_editable: bool = True, others_from_model: bool = True,
             unlabelled_others: Collection[int] = (), flag_unsure: bool = True,
             call: ModelCall | None = None) -> None:
        """``unlabelled_others``: the others whose result one of ``mine`` repeats (no chip or halo of their own);
        ``flag_unsure``: mark the model's unsure results (off once the reader has reviewed the slice), judged with
        ``call``, what the model's result says (:mod:`core.review.confidence`)."""
        mine_style = self._mine_style = MINE if mine_editable else READ_ONLY
        self._flag_unsure, self._call = flag_unsure, call
        other_style: BoxStyle = (MODEL if mine_editable else MODEL_VIEW) if others_from_model else READ_ONLY
        for index, vertebra in enumerate(mine):
            item = self._item(self._mine, index)
            item.show_vertebra(index, vertebra, chip_text(vertebra), mine_style,
                               low_confidence=flag_unsure and self._unsure(vertebra), selected=index == selected)
            item.chip.setVisible(True)
        for index, vertebra in enumerate(others):
            labelled = index not in unlabelled_others
            item = self._item(self._others, index)
            item.show_vertebra(index, vertebra, chip_text(vertebra), other_style,
                               low_confidence=labelled and flag_unsure and others_from_model
                               and self._unsure(vertebra), selected=index == selected_other)
            item.chip.setVisible(labelled)
        for pool, used in ((self._mine, len(mine)), (self._others, len(others))):
            for item in pool[used:]:
                item.setVisible(False)
                item.chip.setVisible(False)
        self._shown = (len(mine), len(others))
        self.stack_chips()

    def _unsure(self, vertebra: Vertebra) -> bool:
        return is_unsure(vertebra, self._call)

    def update_mine(self, indices: Sequence[int], mine: Sequence[Vertebra], selected: int | None) -> None:
        """Draw the reader's boxes ``indices`` again (an edit changed them), styled as :meth:`show` last did."""
        for index in indices:
            vertebra = mine[index]
            self._item(self._mine, index).show_vertebra(
                index, vertebra, chip_text(vertebra), self._mine_style, selected=index == selected,
                low_confidence=self._flag_unsure and self._unsure(vertebra))
        self.stack_chips()

    def select(self, selected: int | None, selected_other: int | None = None) -> None:
        """Change which box is selected without drawing the others again."""
        for item in self.mine_items():
            item.set_selected(item.index == selected)
        for item in self.other_items():
            item.set_selected(item.index == selected_other)

    def stack_chips(self, *args) -> None:
        """Move the chips of each side up or down (in screen pixels) so that none covers another."""
        pixel = self._view.viewPixelSize()[1]
        if not math.isfinite(pixel) or pixel <= 0:
            return  # not laid out yet
        sign = 1.0 if self._view.yInverted() else -1.0
        chips = [item.chip for item in (*self.mine_items(), *self.other_items()) if item.chip.isVisible()]
        for right in (False, True):
            side = [chip for chip in chips if chip.right == right]
            wanted = [sign * chip.pos().y() / pixel for chip in side]
            centres = stack_labels(wanted, LabelChip.line_height(), CHIP_SPACING)
            for chip, want, centre in zip(side, wanted, centres, strict=True):
                chip.set_offset(centre - want)

    def clear(self) -> None:
        self.show((), ())

    @property
    def count(self) -> int:
        return sum(self._shown)

    def mine_items(self) -> list[VertebraBoxItem]:
        return self._mine[: self._shown[0]]

    def other_items(self) -> list[VertebraBoxItem]:
        return self._others[: self._shown[1]]

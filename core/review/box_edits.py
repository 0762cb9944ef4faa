"""Edits of one box beyond a single command, and which boxes of a slice the reader steps through.

- A box of the model's result that the reader edits before taking it (a disease key, the level, a move or resize,
  Del) is taken into the reader's result in the same undoable step as the edit (:func:`adoption`).
- A level set on one box is followed by the rest of the column: the others are counted from it along the spine, as
  the model's levels are (:func:`following_levels`, :func:`core.models.levels.assign_levels`).
- Tab goes through the boxes from the top of the spine to the bottom (:func:`next_along_spine`).
- Where the reader's box repeats the model's result (the same vertebra by the paper's hit rule, the same label and
  level), the two are one result, shown with one label (:func:`repeated_by_reader`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.annotations.commands import AddVertebra, Command, ReplaceAll, SetLevel
from core.annotations.geometry import pair_by_iom
from core.annotations.model import LEVELS, SliceAnnotation, Vertebra
from core.models.levels import assign_levels, spine_order

ACCEPT_TEXT = "accept the model's result"


@dataclass(frozen=True)
class BoxRef:
    """A box on the shown slice: the reader's box ``index``, or (``model``) the model's box ``index`` that is not in
    the reader's result."""

    index: int
    model: bool = False


def adoption(state: SliceAnnotation, model: SliceAnnotation, index: int) -> tuple[Command, int]:
    """The command that takes the model's box ``index`` into the reader's result, and the box's index there after
    it. Where the reader has no box on the slice yet and has not marked it reviewed, that is the model's whole result
    (as A takes it), so that an edit of one box does not leave the rest of the model's result behind; otherwise the
    box alone, after the reader's own (which stay as they are)."""
    if not state.vertebrae and not state.reviewed:
        return ReplaceAll(model.vertebrae, text=ACCEPT_TEXT), index
    return AddVertebra(model.vertebrae[index]), len(state.vertebrae)


def _boxes(vertebrae: Sequence[Vertebra]) -> np.ndarray:
    return np.array([v.box.as_list() for v in vertebrae], dtype=np.float64).reshape(-1, 4)


def following_levels(state: SliceAnnotation, index: int, level: str | None) -> list[Command]:
    """``level`` on box ``index`` and, when it is a level, the levels counted from it along the spine on the other
    boxes (gaps where the slice misses a body are counted in); one command per box whose level changes."""
    if level is None:
        return [SetLevel(index, level=None)]
    levels = assign_levels(_boxes(state.vertebrae), (index, level))
    return [SetLevel(i, level=found) for i, found in enumerate(levels)
            if i == index or found != state.vertebrae[i].level]


def spine_sequence(vertebrae: Sequence[Vertebra]) -> list[int]:
    """Indices of ``vertebrae`` from the top of the spine to the bottom."""
    return [int(i) for i in spine_order(_boxes(vertebrae))] if vertebrae else []


def next_along_spine(mine: Sequence[Vertebra], model: Sequence[Vertebra], current: BoxRef | None,
                     delta: int) -> BoxRef | None:
    """The box Tab (``delta`` 1) or Shift+Tab (-1) selects after ``current``: the next one down (or up) the spine
    among the reader's boxes, or among the model's while the reader has none on the slice; round again at the end.
    (The model's boxes the reader has left out stay a click away: Tab does not come back to a box the reader
    deleted.)"""
    from_model = not mine
    order = [BoxRef(i, model=from_model) for i in spine_sequence(model if from_model else mine)]
    if not order:
        return None
    place = order.index(current) + delta if current in order else (0 if delta > 0 else -1)
    return order[place % len(order)]


def reader_partners(mine: Sequence[Vertebra], model: Sequence[Vertebra]) -> dict[int, int]:
    """The reader's box (index) on the same vertebra as each of the model's boxes that has one (the paper's hit
    rule, IoM above 0.5): a click or an edit there is one of the reader's box, not a second box for that vertebra."""
    if not mine or not model:
        return {}
    return {j: i for i, j in pair_by_iom([v.box for v in mine], [v.box for v in model])}


def repeated_by_reader(mine: Sequence[Vertebra], model: Sequence[Vertebra]) -> set[int]:
    """Indices of the model's boxes that one of the reader's boxes repeats: a hit with the same label and level."""
    return {j for j, i in reader_partners(mine, model).items()
            if (mine[i].label, mine[i].level) == (model[j].label, model[j].level)}


def changed_boxes(before: SliceAnnotation, after: SliceAnnotation) -> tuple[int, ...] | None:
    """The indices of the boxes that differ between two states of a slice, or None when boxes were added or removed
    (the states are immutable: an unchanged box is the same object)."""
    if len(before.vertebrae) != len(after.vertebrae):
        return None
    return tuple(i for i, (a, b) in enumerate(zip(before.vertebrae, after.vertebrae, strict=True)) if a is not b)


def stepped_level(level: str | None, delta: int) -> str:
    """The level ``delta`` places down the spine from ``level`` (``[`` and ``]``), within C1-S1; an unknown level
    becomes L1."""
    index = LEVELS.index(level) + delta if level else LEVELS.index("L1")
    return LEVELS[max(0, min(len(LEVELS) - 1, index))]

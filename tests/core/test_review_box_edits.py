"""Editing a model box takes it into the reader's result; a level carries along the spine; Tab's order."""

from __future__ import annotations

from core.annotations.model import Box, Disease, SliceAnnotation, Vertebra
from core.review.box_edits import BoxRef, adoption, following_levels, next_along_spine, repeated_by_reader

COLUMN = tuple(Vertebra(Box(40, 10 + 30 * i, 80, 35 + 30 * i), level=None) for i in (2, 0, 3, 1))  # not in order


def state(*vertebrae: Vertebra, reviewed: bool = False) -> SliceAnnotation:
    return SliceAnnotation(120, 200, vertebrae, reviewed=reviewed)


def test_an_untouched_slice_takes_the_whole_result_a_started_one_the_box_alone():
    model = state(*COLUMN)
    command, index = adoption(state(), model, 2)
    assert index == 2 and command.apply(state()).vertebrae == COLUMN
    mine = state(Vertebra(Box(0, 0, 20, 20), source="r1"))
    command, index = adoption(mine, model, 2)
    assert index == 1 and command.apply(mine).vertebrae == (mine.vertebrae[0], COLUMN[2])
    reviewed_empty = state(reviewed=True)  # "no vertebra here", said by the reader: not overwritten
    assert adoption(reviewed_empty, model, 2)[0].apply(reviewed_empty).vertebrae == (COLUMN[2],)


def test_a_level_on_one_box_sets_the_column_and_unknown_sets_one():
    column = state(*COLUMN)
    after = column
    for command in following_levels(column, 1, "L1"):  # the top body
        after = command.apply(after)
    assert [v.level for v in after.vertebrae] == ["L3", "L1", "L4", "L2"]
    low = column
    for command in following_levels(column, 2, "L5"):  # the bottom one: the others count up from it
        low = command.apply(low)
    assert [v.level for v in low.vertebrae] == ["L4", "L2", "L5", "L3"]
    assert len(following_levels(after, 0, None)) == 1


def test_tab_goes_down_the_spine_through_the_readers_boxes_or_else_the_models():
    order = []
    current = None
    for _ in range(5):
        current = next_along_spine((), COLUMN, current, 1)
        order.append(current)
    assert order == [BoxRef(1, True), BoxRef(3, True), BoxRef(0, True), BoxRef(2, True), BoxRef(1, True)]
    assert next_along_spine((), COLUMN, None, -1) == BoxRef(2, True)
    assert next_along_spine(COLUMN[:2], COLUMN, BoxRef(1), 1) == BoxRef(0)
    assert next_along_spine((), (), None, 1) is None


def test_a_readers_box_repeats_the_models_when_label_and_level_agree():
    model = (Vertebra(Box(0, 0, 40, 20), frozenset({Disease.OVCF}), level="L1"), Vertebra(Box(0, 30, 40, 50)))
    mine = (model[0].with_changes(box=Box(1, 1, 41, 21), source="r1"), model[1].with_changes(level="L2"))
    assert repeated_by_reader(mine, model) == {0}
    assert repeated_by_reader((), model) == set()

"""Edit commands with undo and redo: each restores exactly the previous state; bad edits change nothing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.annotations.commands import (
    AddVertebra,
    AnnotationEditor,
    Command,
    DeleteVertebra,
    ReplaceAll,
    SetBox,
    SetDiseases,
    SetLevel,
    SetReviewed,
)
from core.annotations.model import LEVELS, Box, Disease, SliceAnnotation, Vertebra
from core.errors import AnnotationEditError

OVCF, OF, SN, KD, PS = Disease.OVCF, Disease.OF, Disease.SN, Disease.KD, Disease.PS


def start_state() -> SliceAnnotation:
    return SliceAnnotation(
        image_width=200,
        image_height=300,
        vertebrae=(
            Vertebra(Box(10, 10, 60, 50), diseases={OVCF}, score=0.9, level="L1", source="model"),
            Vertebra(Box(10, 60, 60, 100), level="L2", source="model", group_id=4, description="d"),
            Vertebra(Box(10, 110, 60, 150), diseases={KD, PS}, source="dr_a"),
        ),
        reader="dr_a",
    )


class Recorder:
    """Collects what ``changed`` emits."""

    def __init__(self, editor: AnnotationEditor) -> None:
        self.states: list[SliceAnnotation] = []
        editor.changed.connect(self.states.append)


@pytest.fixture
def editor() -> AnnotationEditor:
    return AnnotationEditor(start_state())


def check_undo_redo(editor: AnnotationEditor, command: Command) -> SliceAnnotation:
    """Apply, undo and redo ``command``; each emits once with the new state and restores exactly."""
    recorder = Recorder(editor)
    before = editor.state
    after = editor.apply(command)
    assert after is editor.state and after != before
    assert editor.undo() == before
    assert editor.state == before
    assert editor.redo() == after
    assert recorder.states == [after, before, after]
    assert recorder.states[0] is not before
    assert editor.can_undo and not editor.can_redo
    return after


def test_add(editor):
    new = Vertebra(Box(100, 200, 150, 260), diseases={SN}, source="dr_a")
    after = check_undo_redo(editor, AddVertebra(new))
    assert after.vertebrae == (*start_state().vertebrae, new)
    assert editor.undo_text() == "add box"


@pytest.mark.parametrize("index", [0, 1, 2])
def test_delete(editor, index):
    after = check_undo_redo(editor, DeleteVertebra(index))
    expected = list(start_state().vertebrae)
    del expected[index]
    assert after.vertebrae == tuple(expected)
    editor.undo()
    assert editor.state.vertebrae[index] == start_state().vertebrae[index]  # back in its own place


def test_move_and_resize(editor):
    after = check_undo_redo(editor, SetBox(1, box=Box(12.5, 61.25, 70.0, 104.75), source="dr_b"))
    moved = after.vertebrae[1]
    assert moved.box == Box(12.5, 61.25, 70.0, 104.75)
    assert moved.source == "dr_b"
    assert moved.with_changes(box=Box(10, 60, 60, 100), source="model") == start_state().vertebrae[1]
    assert after.vertebrae[0] == start_state().vertebrae[0]


def test_move_without_source_keeps_the_source(editor):
    after = check_undo_redo(editor, SetBox(2, box=Box(0, 0, 200, 300)))
    assert after.vertebrae[2].source == "dr_a"
    assert after.vertebrae[2].box == Box(0, 0, 200, 300)  # the whole image is allowed


def test_set_diseases(editor):
    after = check_undo_redo(editor, SetDiseases(1, diseases={OF, SN}, source="dr_a"))
    assert after.vertebrae[1].diseases == {OF, SN}
    assert after.vertebrae[1].source == "dr_a"
    assert editor.undo_text() == "set OF+SN"


def test_empty_diseases_make_normal(editor):
    after = check_undo_redo(editor, SetDiseases(2, diseases=()))
    assert after.vertebrae[2].is_normal
    assert after.vertebrae[2].label == "NORMAL"
    assert editor.undo_text() == "set NORMAL"


def test_set_diseases_from_a_generator_survives_redo(editor):
    command = SetDiseases(0, diseases=(d for d in (KD, OVCF)))
    assert command.text == "set OVCF+KD"
    check_undo_redo(editor, command)
    assert editor.state.vertebrae[0].diseases == {OVCF, KD}


def test_set_diseases_from_codes(editor):
    editor.apply(SetDiseases(1, diseases=["PS", "OF"]))
    assert editor.state.vertebrae[1].diseases == {PS, OF}


@pytest.mark.parametrize("level", ["L5", "T1", None])
def test_set_level(editor, level):
    after = check_undo_redo(editor, SetLevel(0, level=level))
    assert after.vertebrae[0].level == level


def test_edits_keep_the_imported_genant_grade():
    state = start_state()
    graded = state.with_changes(vertebrae=(state.vertebrae[0].with_changes(genant=2), *state.vertebrae[1:]))
    editor = AnnotationEditor(graded)
    for command in (SetBox(0, box=Box(12, 10, 62, 50), source="dr_a"), SetDiseases(0, diseases={OF}, source="dr_a"),
                    SetLevel(0, level="T12")):
        after = check_undo_redo(editor, command)
        assert after.vertebrae[0].genant == 2
    assert editor.state.vertebrae[0].with_changes(genant=None) == Vertebra(
        Box(12, 10, 62, 50), diseases={OF}, score=0.9, level="T12", source="dr_a"
    )


def test_replace_all(editor):
    model_result = (Vertebra(Box(5, 5, 55, 45), score=0.99), Vertebra(Box(5, 50, 55, 95), diseases={OF}, score=0.8))
    after = check_undo_redo(editor, ReplaceAll(model_result))
    assert after.vertebrae == model_result
    assert editor.undo_text() == "replace all boxes"


def test_replace_all_with_nothing(editor):
    assert check_undo_redo(editor, ReplaceAll(())).vertebrae == ()


def test_replace_all_from_a_generator(editor):
    vertebrae = [Vertebra(Box(5, 5, 55, 45)), Vertebra(Box(5, 50, 55, 95))]
    after = check_undo_redo(editor, ReplaceAll(v for v in vertebrae))
    assert after.vertebrae == tuple(vertebrae)


def test_set_reviewed(editor):
    after = check_undo_redo(editor, SetReviewed(True))
    assert after.reviewed and after.vertebrae == start_state().vertebrae
    assert editor.undo_text() == "mark reviewed"
    after = check_undo_redo(editor, SetReviewed(False))
    assert not after.reviewed
    assert editor.undo_text() == "mark not reviewed"


def test_a_sequence_undoes_and_redoes_in_order(editor):
    commands = [
        AddVertebra(Vertebra(Box(100, 200, 150, 260))),
        SetDiseases(3, diseases={PS}),
        SetBox(0, box=Box(11, 11, 61, 51)),
        DeleteVertebra(1),
        SetLevel(2, level="T12"),
        SetReviewed(True),
        ReplaceAll((Vertebra(Box(1, 1, 2, 2)),)),
        DeleteVertebra(0),
    ]
    states = [editor.state]
    for command in commands:
        states.append(editor.apply(command))
    for expected in reversed(states[:-1]):
        assert editor.undo() == expected
    assert editor.state == start_state()
    assert not editor.can_undo
    for expected in states[1:]:
        assert editor.redo() == expected
    assert not editor.can_redo


def test_new_command_after_undo_clears_redo(editor):
    editor.apply(SetLevel(0, level="T1"))
    editor.apply(SetLevel(0, level="T2"))
    editor.undo()
    assert editor.can_redo and editor.redo_text() == "set level"
    editor.apply(SetDiseases(0, diseases=()))
    assert not editor.can_redo and editor.redo_text() == ""
    recorder = Recorder(editor)
    state = editor.state
    assert editor.redo() is state
    assert recorder.states == []
    assert editor.state.vertebrae[0].level == "T1"


def test_undo_and_redo_with_empty_stacks_do_nothing(editor):
    recorder = Recorder(editor)
    state = editor.state
    assert editor.undo() is state and editor.redo() is state
    assert recorder.states == []
    assert (editor.can_undo, editor.can_redo, editor.undo_text(), editor.redo_text()) == (False, False, "", "")


INVALID = [
    ("add outside right", lambda: AddVertebra(Vertebra(Box(150, 10, 201, 50))), "outside the 200x300 image"),
    ("add outside top", lambda: AddVertebra(Vertebra(Box(10, -0.5, 50, 50))), "outside"),
    ("move outside", lambda: SetBox(0, box=Box(190, 10, 210, 50)), "outside"),
    ("move below", lambda: SetBox(1, box=Box(10, 290, 50, 300.5)), "outside"),
    ("move without box", lambda: SetBox(0), "no box given"),
    ("move bad index", lambda: SetBox(3, box=Box(10, 10, 20, 20)), "no vertebra number 4"),
    (
        "replace with one outside",
        lambda: ReplaceAll((Vertebra(Box(1, 1, 9, 9)), Vertebra(Box(-1, 1, 9, 9)))),
        "outside",
    ),
    ("unknown level", lambda: SetLevel(0, level="L6"), "unknown level 'L6'"),
    ("lower-case level", lambda: SetLevel(0, level="l3"), "unknown level"),
    ("level bad index", lambda: SetLevel(7, level="L1"), "no vertebra number 8"),
    ("delete bad index", lambda: DeleteVertebra(3), "no vertebra number 4 on this slice \\(3 boxes\\)"),
    ("delete negative index", lambda: DeleteVertebra(-1), "no vertebra number 0"),
    ("diseases bad index", lambda: SetDiseases(3, diseases={OVCF}), "no vertebra number 4"),
    ("diseases negative index", lambda: SetDiseases(-2, diseases={OVCF}), "no vertebra number"),
]


@pytest.mark.parametrize(("make", "problem"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_edit_changes_nothing(editor, make, problem):
    editor.apply(SetLevel(0, level="T1"))
    editor.apply(SetReviewed(True))
    editor.undo()  # one command on each stack
    recorder = Recorder(editor)
    state = editor.state
    with pytest.raises(AnnotationEditError, match=problem):
        editor.apply(make())
    assert editor.state is state
    assert recorder.states == []
    assert (editor.undo_text(), editor.redo_text()) == ("set level", "mark reviewed")
    assert editor.redo().reviewed  # the redo stack survived the failed edit
    editor.undo()
    editor.undo()
    assert editor.state == start_state()
    assert not editor.can_undo


def test_unknown_disease_is_an_edit_error(editor):
    with pytest.raises(AnnotationEditError, match="XYZ"):
        editor.apply(SetDiseases(0, diseases={"XYZ"}))
    assert editor.state == start_state() and not editor.can_undo


def test_changed_fires_once_per_change_with_the_new_state(editor):
    calls: list[tuple] = []
    editor.changed.connect(lambda *args: calls.append(args))
    applied = editor.apply(SetReviewed(True))
    undone = editor.undo()
    redone = editor.redo()
    assert calls == [(applied,), (undone,), (redone,)]
    assert calls[0][0] is applied and calls[1][0] is undone and calls[2][0] is redone
    assert [c[0].reviewed for c in calls] == [True, False, True]


def test_changed_sees_the_editor_already_updated(editor):
    seen = []
    editor.changed.connect(lambda state: seen.append((state is editor.state, editor.can_undo)))
    editor.apply(SetReviewed(True))
    editor.undo()
    assert seen == [(True, True), (True, False)]


def test_a_view_that_disconnects_hears_nothing(editor):
    recorder = Recorder(editor)
    editor.changed.disconnect(recorder.states.append)
    editor.apply(SetReviewed(True))
    assert recorder.states == []


def test_undo_limit(editor):
    limited = AnnotationEditor(start_state(), limit=3)
    states = [limited.state]
    for level in ("T1", "T2", "T3", "T4", "T5"):
        states.append(limited.apply(SetLevel(0, level=level)))
    undone = 0
    while limited.can_undo:
        limited.undo()
        undone += 1
    assert undone == 3
    assert limited.state == states[2]
    assert limited.state.vertebrae[0].level == "T2"
    for expected in states[3:]:
        assert limited.redo() == expected


def test_undo_limit_of_one_and_of_zero():
    one = AnnotationEditor(start_state(), limit=1)
    one.apply(SetReviewed(True))
    one.apply(SetLevel(0, level="S1"))
    one.undo()
    assert not one.can_undo and one.state.reviewed and one.state.vertebrae[0].level == "L1"
    zero = AnnotationEditor(start_state(), limit=0)
    assert zero.apply(SetReviewed(True)).reviewed
    assert not zero.can_undo


def test_default_limit_keeps_500_steps():
    editor = AnnotationEditor(start_state())
    for i in range(520):
        editor.apply(SetReviewed(i % 2 == 0))
    count = 0
    while editor.can_undo:
        editor.undo()
        count += 1
    assert count == 500


def test_commands_do_not_change_the_state_they_are_given():
    state = start_state()
    for command in (
        AddVertebra(Vertebra(Box(1, 1, 5, 5))),
        DeleteVertebra(0),
        SetBox(0, box=Box(1, 1, 5, 5)),
        SetDiseases(0),
        SetLevel(0, level="C1"),
        ReplaceAll(()),
        SetReviewed(True),
    ):
        command.apply(state)
        assert state == start_state()


# ---------------------------------------------------------------------------------------------------------------
# Property: any mix of valid and invalid edits, then undo everything, gives back the start exactly


def command_strategy() -> st.SearchStrategy:
    index = st.integers(-1, 5)
    box = st.builds(
        lambda x, y, w, h: Box(x, y, x + w, y + h),
        st.floats(-5, 195),
        st.floats(-5, 295),
        st.floats(1, 20),
        st.floats(1, 20),
    )
    vertebra = st.builds(Vertebra, box, st.frozensets(st.sampled_from(list(Disease))))
    return st.one_of(
        st.builds(AddVertebra, vertebra),
        st.builds(DeleteVertebra, index),
        st.builds(lambda i, b: SetBox(i, box=b), index, box),
        st.builds(lambda i, d: SetDiseases(i, diseases=d), index, st.sets(st.sampled_from(list(Disease)))),
        st.builds(lambda i, lv: SetLevel(i, level=lv), index, st.sampled_from([None, "L9", *LEVELS])),
        st.builds(lambda vs: ReplaceAll(tuple(vs)), st.lists(vertebra, max_size=3)),
        st.builds(SetReviewed, st.booleans()),
    )


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(command_strategy(), st.sampled_from(["apply", "apply", "undo", "redo"])), max_size=25))
def test_any_edit_sequence_undoes_exactly(steps):
    editor = AnnotationEditor(start_state())
    history = [editor.state]  # history[k] is the state after k applied commands still on the undo stack
    future: list[SliceAnnotation] = []
    emitted = Recorder(editor)
    expected_emits = 0
    for command, action in steps:
        if action == "apply":
            try:
                editor.apply(command)
            except AnnotationEditError:
                assert editor.state == history[-1]
                continue
            history.append(editor.state)
            future.clear()
            expected_emits += 1
        elif action == "undo" and len(history) > 1:
            future.append(history.pop())
            assert editor.undo() == history[-1]
            expected_emits += 1
        elif action == "redo" and future:
            history.append(future.pop())
            assert editor.redo() == history[-1]
            expected_emits += 1
        assert editor.state == history[-1]
        assert editor.can_undo == (len(history) > 1) and editor.can_redo == bool(future)
    assert len(emitted.states) == expected_emits
    while editor.can_undo:
        editor.undo()
    assert editor.state == start_state()

"""The data model's values (Box, Vertebra, SliceAnnotation) and the Event the views connect to."""

from __future__ import annotations

import dataclasses
import itertools
import math

import pytest

from core.annotations.model import (
    CLASS_CODES,
    DISEASES,
    LEVELS,
    MODEL_SOURCE,
    NORMAL,
    Box,
    Disease,
    SliceAnnotation,
    Vertebra,
    disease_label,
    highest_genant,
    sort_diseases,
)
from core.events import Event

OVCF, OF, SN, KD, PS = Disease.OVCF, Disease.OF, Disease.SN, Disease.KD, Disease.PS


# ---------------------------------------------------------------------------------------------------------------
# Box


def test_box_measures():
    box = Box(10.0, 20.0, 40.0, 30.0)
    assert (box.width, box.height, box.area) == (30.0, 10.0, 300.0)
    assert box.centre == (25.0, 25.0)
    assert box.as_list() == [10.0, 20.0, 40.0, 30.0]
    assert box.translated(-10, 5) == Box(0.0, 25.0, 30.0, 35.0)
    assert box.clipped(35, 28) == Box(10.0, 20.0, 35.0, 28.0)
    assert Box(-5, -5, 10, 10).clipped(100, 100) == Box(0, 0, 10, 10)


@pytest.mark.parametrize(
    "coords",
    [(5, 5, 5, 10), (5, 5, 10, 5), (10, 5, 5, 10), (5, 10, 10, 5), (0, 0, 0, 0), (1, 1, 0.999999, 2)],
)
def test_box_without_area(coords):
    with pytest.raises(ValueError, match="no area"):
        Box(*coords)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, None, "1", [1]])
@pytest.mark.parametrize("position", range(4))
def test_box_coordinates_must_be_finite_numbers(bad, position):
    coords = [1.0, 2.0, 3.0, 4.0]
    coords[position] = bad
    with pytest.raises(ValueError, match="finite numbers"):
        Box(*coords)


def test_box_from_points():
    assert Box.from_points([[30, 40], [10, 20]]) == Box(10, 20, 30, 40)
    assert Box.from_points([(1, 5), (4, 2), (3, 9), (0.5, 6)]) == Box(0.5, 2, 4, 9)
    assert all(isinstance(v, float) for v in Box.from_points([[1, 2], [3, 4]]).as_list())
    with pytest.raises(ValueError, match="no area"):
        Box.from_points([[1, 1], [5, 1]])
    with pytest.raises(ValueError):
        Box.from_points([])


def test_box_is_immutable_and_compares_by_value():
    box = Box(1, 2, 3, 4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        box.x1 = 0  # type: ignore[misc]
    assert box == Box(1.0, 2.0, 3.0, 4.0)
    assert box != Box(1, 2, 3, 4.5)
    assert hash(box) == hash(Box(1, 2, 3, 4))


# ---------------------------------------------------------------------------------------------------------------
# Vertebra


def test_vertebra_defaults():
    vertebra = Vertebra(Box(1, 2, 3, 4))
    assert vertebra.diseases == frozenset() and vertebra.is_normal and vertebra.label == NORMAL
    assert (vertebra.probabilities, vertebra.score, vertebra.level, vertebra.group_id) == (None, None, None, None)
    assert vertebra.source == MODEL_SOURCE == "model"
    assert vertebra.description == ""
    assert dict(vertebra.other_flags) == {} and dict(vertebra.extra) == {}
    assert vertebra.genant is None


@pytest.mark.parametrize("level", LEVELS)
def test_every_level_is_valid(level):
    assert Vertebra(Box(1, 2, 3, 4), level=level).level == level


@pytest.mark.parametrize("level", ["L6", "T13", "C8", "S2", "l3", "L 3", "", "lumbar"])
def test_unknown_level(level):
    with pytest.raises(ValueError, match="unknown vertebral level"):
        Vertebra(Box(1, 2, 3, 4), level=level)


def test_levels_run_from_c1_to_s1():
    assert len(LEVELS) == 7 + 12 + 5 + 1
    assert LEVELS[0] == "C1" and LEVELS[6] == "C7" and LEVELS[7] == "T1" and LEVELS[18] == "T12"
    assert LEVELS[19:] == ("L1", "L2", "L3", "L4", "L5", "S1")


def test_vertebra_diseases_from_codes_and_invalid_code():
    vertebra = Vertebra(Box(1, 2, 3, 4), diseases=["KD", Disease.OVCF, "KD"])
    assert vertebra.diseases == frozenset({KD, OVCF})
    assert all(isinstance(d, Disease) for d in vertebra.diseases)
    assert not vertebra.is_normal and vertebra.label == "OVCF+KD"
    with pytest.raises(ValueError):
        Vertebra(Box(1, 2, 3, 4), diseases=["ovcf"])
    with pytest.raises(ValueError):
        Vertebra(Box(1, 2, 3, 4), diseases=["NORMAL"])


def test_vertebra_mappings_are_read_only_copies():
    probabilities = {"OVCF": 0.9}
    flags = {"uncertain": True}
    extra = {"colour": "red"}
    vertebra = Vertebra(Box(1, 2, 3, 4), probabilities=probabilities, other_flags=flags, extra=extra)
    probabilities["OVCF"] = 0.1
    flags.clear()
    extra["colour"] = "blue"
    assert vertebra.probabilities == {"OVCF": 0.9}
    assert vertebra.other_flags == {"uncertain": True}
    assert vertebra.extra == {"colour": "red"}
    for mapping in (vertebra.probabilities, vertebra.other_flags, vertebra.extra):
        with pytest.raises(TypeError):
            mapping["new"] = 1  # type: ignore[index]


def test_vertebra_with_changes_makes_a_new_value():
    vertebra = Vertebra(Box(1, 2, 3, 4), diseases={OVCF}, level="L1")
    changed = vertebra.with_changes(diseases={PS}, level="L2")
    assert vertebra.diseases == {OVCF} and vertebra.level == "L1"
    assert changed.diseases == {PS} and changed.level == "L2" and changed.box == vertebra.box
    with pytest.raises(ValueError):
        vertebra.with_changes(level="L9")
    with pytest.raises(dataclasses.FrozenInstanceError):
        vertebra.level = "L2"  # type: ignore[misc]


@pytest.mark.parametrize("grade", [0, 1, 2, 3])
def test_genant_grade_is_kept_and_changes_like_any_field(grade):
    import numpy as np

    vertebra = Vertebra(Box(1, 2, 3, 4), level="L1", genant=grade)
    assert vertebra.genant == grade and Vertebra(Box(1, 2, 3, 4)).genant is None
    assert vertebra.with_changes(diseases={OVCF}).genant == grade
    assert vertebra != vertebra.with_changes(genant=None)
    numpy_grade = Vertebra(Box(1, 2, 3, 4), genant=np.int64(grade)).genant
    assert numpy_grade == grade and type(numpy_grade) is int


@pytest.mark.parametrize("bad", [-1, 4, 1.0, 2.5, "2", True, False, [1]])
def test_genant_grade_must_be_an_int_from_0_to_3(bad):
    with pytest.raises(ValueError, match="Genant grade must be a whole number from 0 to 3"):
        Vertebra(Box(1, 2, 3, 4), genant=bad)


def test_highest_genant_ignores_unknown_grades():
    assert highest_genant([None, 1, 3, 0]) == 3
    assert highest_genant([None, None]) is None and highest_genant([]) is None
    assert highest_genant(iter([0])) == 0


def test_vertebrae_compare_by_value():
    a = Vertebra(Box(1, 2, 3, 4), diseases={OVCF, KD}, probabilities={"OVCF": 0.5}, extra={"k": [1]})
    b = Vertebra(Box(1, 2, 3, 4), diseases=[KD, OVCF], probabilities={"OVCF": 0.5}, extra={"k": [1]})
    assert a == b
    assert a != b.with_changes(extra={"k": [2]})
    assert a != b.with_changes(probabilities=None)


# ---------------------------------------------------------------------------------------------------------------
# Labels and class codes


def test_class_codes_and_order():
    assert [d.value for d in DISEASES] == ["OVCF", "OF", "SN", "KD", "PS"]
    assert CLASS_CODES == ("OVCF", "OF", "SN", "KD", "PS", "NORMAL")


@pytest.mark.parametrize("size", range(len(DISEASES) + 1))
def test_disease_label_uses_the_fixed_order_whatever_the_input_order(size):
    for combination in itertools.combinations(DISEASES, size):
        expected = "+".join(d.value for d in combination) if combination else "NORMAL"
        for order in itertools.permutations(combination):
            assert disease_label(order) == expected
            assert disease_label(set(order)) == expected
            assert sort_diseases(order) == combination


def test_disease_label_ignores_repeats():
    assert disease_label([PS, OVCF, PS, OVCF]) == "OVCF+PS"
    assert disease_label(iter([KD, SN])) == "SN+KD"


# ---------------------------------------------------------------------------------------------------------------
# SliceAnnotation


@pytest.mark.parametrize(("width", "height"), [(0, 10), (10, 0), (-1, 10), (10, -5), (0, 0)])
def test_slice_size_must_be_positive(width, height):
    with pytest.raises(ValueError, match="image size must be positive"):
        SliceAnnotation(width, height)


def test_slice_defaults_and_conversions():
    items = [Vertebra(Box(1, 2, 3, 4)), Vertebra(Box(1, 5, 3, 8), diseases={SN})]
    flags = {"motion": True}
    annotation = SliceAnnotation(10, 20, vertebrae=items, flags=flags)
    items.clear()
    flags["motion"] = False
    assert isinstance(annotation.vertebrae, tuple) and len(annotation.vertebrae) == 2
    assert annotation.flags == {"motion": True}
    with pytest.raises(TypeError):
        annotation.flags["x"] = True  # type: ignore[index]
    assert (annotation.reader, annotation.model, annotation.reviewed, annotation.image_data) == (
        None,
        None,
        False,
        None,
    )
    assert annotation.image_path == "" and annotation.other_shapes == () and dict(annotation.extra) == {}
    assert annotation.diseased() == (annotation.vertebrae[1],)


def test_slice_with_changes_and_equality():
    annotation = SliceAnnotation(10, 20, (Vertebra(Box(1, 2, 3, 4)),), reader="dr_a")
    reviewed = annotation.with_changes(reviewed=True)
    assert reviewed.reviewed and not annotation.reviewed
    assert reviewed != annotation and reviewed.with_changes(reviewed=False) == annotation
    with pytest.raises(ValueError):
        annotation.with_changes(image_width=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        annotation.reviewed = True  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------------------------
# Event


def test_event_calls_callbacks_in_order_with_the_arguments():
    event, calls = Event(), []
    event.connect(lambda *args: calls.append(("first", args)))
    event.connect(lambda *args: calls.append(("second", args)))
    event.emit(1, "two")
    event.emit()
    assert calls == [("first", (1, "two")), ("second", (1, "two")), ("first", ()), ("second", ())]
    assert len(event) == 2


def test_event_connects_a_callback_once():
    event, calls = Event(), []
    event.connect(calls.append)
    event.connect(calls.append)  # a bound method made again compares equal
    event.emit("x")
    assert calls == ["x"] and len(event) == 1


def test_event_disconnect_one_all_and_unknown():
    event, a, b = Event(), [], []
    event.connect(a.append)
    event.connect(b.append)
    event.disconnect(a.append)
    event.emit(1)
    assert (a, b) == ([], [1])
    event.disconnect(a.append)  # not connected: nothing happens
    event.disconnect(print)
    assert len(event) == 1
    event.connect(a.append)
    event.disconnect()
    event.emit(2)
    assert (a, b, len(event)) == ([], [1], 0)


def test_event_callback_may_disconnect_while_emitting():
    event, calls = Event(), []

    def once(value):
        calls.append(("once", value))
        event.disconnect(once)

    event.connect(once)
    event.connect(lambda value: calls.append(("always", value)))
    event.emit(1)
    event.emit(2)
    assert calls == [("once", 1), ("always", 1), ("always", 2)]


def test_event_callback_error_propagates():
    event = Event()

    def broken(_):
        raise RuntimeError("view failed")

    event.connect(broken)
    with pytest.raises(RuntimeError, match="view failed"):
        event.emit(1)


def test_bound_methods_of_different_objects_are_different_callbacks():
    class View:
        def __init__(self):
            self.seen = []

        def redraw(self, value):
            self.seen.append(value)

    first, second = View(), View()
    event = Event()
    event.connect(first.redraw)
    event.connect(second.redraw)
    event.disconnect(first.redraw)
    event.emit("state")
    assert (first.seen, second.seen) == ([], ["state"])


def test_box_takes_numpy_scalars_from_models_and_refuses_booleans():
    import numpy as np

    box = Box(np.float32(1.5), np.float64(2), np.int64(10), np.float32(20.25))
    assert box.as_list() == [1.5, 2.0, 10.0, 20.25]
    assert all(type(v) is float for v in box.as_list())
    with pytest.raises(ValueError):
        Box(False, 0, True, 1)

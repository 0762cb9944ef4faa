"""Vertebra levels: order along the spine, the sacrum anchor learned from annotated levels, a user's anchor, and
propagation through the slices of a case, checked on phantom slices whose levels are known."""

from __future__ import annotations

import numpy as np
import pytest

from core.models.levels import (
    assign_levels,
    fit_sacrum_model,
    propagate_levels,
    sacrum_probability,
    slice_levels,
    spine_order,
)
from core.progress import run
from core.synthetic.generate import SynthOptions, generate_study
from core.training.datasets import study_records


@pytest.fixture(scope="module")
def phantom(tmp_path_factory) -> tuple[list, list]:
    """(training, held-out) annotated phantom slices with their true levels."""
    root = tmp_path_factory.mktemp("levels")
    run(generate_study(root / "a", SynthOptions(cases=14, seed=31, slices_per_case=3, readers=0)))
    run(generate_study(root / "b", SynthOptions(cases=10, seed=32, slices_per_case=3, readers=0)))
    return study_records(root / "a")[0], study_records(root / "b")[0]


def test_order_is_top_to_bottom():
    boxes = np.array([[0, 50, 10, 60], [0, 0, 10, 10], [5, 25, 15, 35.0]])
    assert spine_order(boxes).tolist() == [1, 2, 0]


def test_a_user_anchor_counts_levels_along_the_spine():
    boxes = np.array([[0, 50, 10, 60], [0, 0, 10, 10], [5, 25, 15, 35.0]])
    assert assign_levels(boxes, (2, "L2")) == ["L3", "L1", "L2"]
    assert assign_levels(boxes, (1, "L5")) == [None, "L5", "S1"]  # nothing below S1
    assert assign_levels(boxes, None) == [None, None, None]
    assert assign_levels(boxes, (0, "X9")) == [None, None, None]


@pytest.mark.slow
def test_true_levels_are_recovered_from_a_true_anchor(phantom):
    _, held_out = phantom
    checked = 0
    for record in held_out:
        if len(record.levels) < 2 or None in record.levels:
            continue
        anchor = (3 % len(record.levels), record.levels[3 % len(record.levels)])
        assert assign_levels(record.boxes, anchor) == list(record.levels)
        checked += 1
    assert checked >= 20


@pytest.mark.slow
def test_the_sacrum_model_finds_s1_on_held_out_slices(phantom):
    train, held_out = phantom
    model = fit_sacrum_model([(r.boxes, r.levels) for r in train])
    assert model is not None and len(model["coef"]) == 6
    right, total, with_s1 = 0, 0, 0
    for record in held_out:
        if len(record.boxes) < 3:
            continue
        lowest = int(spine_order(record.boxes)[-1])
        is_s1 = record.levels[lowest] == "S1"
        with_s1 += is_s1
        right += (sacrum_probability(record.boxes, model) >= 0.5) == is_s1
        total += 1
    assert with_s1 >= 3 and total - with_s1 >= 3
    assert right / total >= 0.85, (right, total)
    # Where the sacrum is found, every level on the slice is right.
    for record in held_out:
        levels, probability = slice_levels(record.boxes, model)
        if probability >= 0.5 and record.levels[int(spine_order(record.boxes)[-1])] == "S1":
            assert levels == list(record.levels)


def test_no_model_or_no_levels_leaves_levels_unknown():
    boxes = np.array([[0, 0, 10, 10], [0, 15, 10, 25], [0, 30, 10, 40.0]])
    assert slice_levels(boxes, None) == ([None, None, None], 0.0)
    assert fit_sacrum_model([(boxes, [None, None, None])]) is None


def test_levels_propagate_to_the_other_slices_of_a_case():
    mid = np.array([[0, 0, 10, 10], [0, 15, 10, 25], [0, 30, 10, 40.0]])
    side = mid[:2] + 1.0  # a parasagittal slice that misses the lowest body
    levels = propagate_levels([mid, side], [["L4", "L5", "S1"], [None, None]], [0.9, 0.1])
    assert levels == [["L4", "L5", "S1"], ["L4", "L5"]]
    unrelated = np.array([[100, 100, 110, 110.0]])
    assert propagate_levels([mid, unrelated], [["L4", "L5", "S1"], [None]], [0.9, 0.0])[1] == [None]

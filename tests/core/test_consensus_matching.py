"""Matching the readers' boxes on one slice and classifying each vertebra group."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from core.annotations.model import Box, Disease, Vertebra
from core.consensus.matching import (
    Agreement,
    MatchSettings,
    classify_group,
    majority_call,
    match_vertebrae,
    median_box,
)
from core.errors import ConsensusError
from tests.core.test_consensus_helpers import column, vertebra

OVCF, OF, KD, SN = Disease.OVCF, Disease.OF, Disease.KD, Disease.SN
IOM = MatchSettings()


def three(col=None, **per_reader):
    base = col if col is not None else column(6)
    readers = {r: [v.with_changes(source=r) for v in base] for r in ("r1", "r2", "r3")}
    readers.update(per_reader)
    return readers


def test_three_identical_copies_are_all_unanimous():
    groups = match_vertebrae(three(column(6, {2: ["OVCF"], 4: ["OF", "PS"]})), IOM)
    assert len(groups) == 6
    assert all(g.status is Agreement.UNANIMOUS and not g.is_disagreement for g in groups)
    assert [g.index for g in groups] == [1, 2, 3, 4, 5, 6]
    assert all(set(g.flags.values()) == {Agreement.UNANIMOUS} for g in groups)
    assert groups[2].majority.diseases == {OVCF} and groups[2].majority.voters == ("r1", "r2", "r3")


def test_groups_are_ordered_top_to_bottom_whatever_the_file_order():
    reversed_column = list(reversed(column(5)))
    groups = match_vertebrae(three(reversed_column), IOM)
    assert [g.versions["r1"].level for g in groups] == ["T11", "T12", "L1", "L2", "L3"]


def test_a_box_one_reader_left_out_is_missing_for_that_reader_with_a_majority():
    col = column(5, {1: ["OVCF"]})
    groups = match_vertebrae(three(col, r3=[v for i, v in enumerate(col) if i != 1]), IOM)
    assert len(groups) == 5
    missing = [g for g in groups if g.status is Agreement.MISSING]
    assert len(missing) == 1 and missing[0].missing_for == ("r3",) and missing[0].index == 2
    call = missing[0].majority
    assert call.present and call.diseases == {OVCF} and call.voters == ("r1", "r2")
    assert missing[0].kinds == ("missing",)


def test_a_stray_box_of_one_reader_is_a_group_of_its_own_and_the_majority_drops_it():
    stray = Vertebra(Box(5, 350, 40, 390), {SN}, source="r2")
    groups = match_vertebrae(three(column(4), r2=[*column(4, source="r2"), stray]), IOM)
    assert len(groups) == 5
    extra = [g for g in groups if g.status is Agreement.MISSING]
    assert len(extra) == 1 and extra[0].drawn_by == ("r2",) and extra[0].missing_for == ("r1", "r3")
    assert extra[0].majority.present is False and extra[0].majority.voters == ("r1", "r3")


def test_two_of_three_is_a_majority_and_all_different_is_a_conflict():
    col = column(3)
    r1 = [col[0], vertebra(1, "OVCF"), vertebra(2, "OVCF")]
    r2 = [col[0], vertebra(1, "OVCF"), vertebra(2, "OF")]
    r3 = [col[0], vertebra(1, "OF"), vertebra(2, "KD")]
    groups = match_vertebrae({"r1": r1, "r2": r2, "r3": r3}, IOM)
    assert [g.status for g in groups] == [Agreement.UNANIMOUS, Agreement.MAJORITY, Agreement.CONFLICT]
    assert groups[1].majority.diseases == {OVCF} and groups[1].majority.voters == ("r1", "r2")
    assert groups[2].majority is None
    assert groups[2].labels() == {"r1": "OVCF", "r2": "OF", "r3": "KD"}


def test_per_flag_classification():
    versions = {"r1": vertebra(0, "OVCF", "KD"), "r2": vertebra(0, "OVCF"), "r3": vertebra(0, "OF")}
    group = classify_group(1, versions, IOM)
    assert group.status is Agreement.CONFLICT
    assert group.flags["OVCF"] is Agreement.MAJORITY  # two say yes
    assert group.flags["KD"] is Agreement.MAJORITY  # two say no
    assert group.flags["OF"] is Agreement.MAJORITY
    assert group.flags["SN"] is Agreement.UNANIMOUS and group.flags["PS"] is Agreement.UNANIMOUS
    # With two readers who drew the box (one missing), a split flag is a conflict.
    two = classify_group(1, {"r1": vertebra(0, "SN"), "r2": vertebra(0), "r3": None}, IOM)
    assert two.status is Agreement.MISSING and two.flags["SN"] is Agreement.CONFLICT
    assert two.kinds == ("missing", "label")


def test_four_readers_split_two_to_two_is_a_conflict():
    versions = {"a": vertebra(0, "OF"), "b": vertebra(0, "OF"), "c": vertebra(0), "d": vertebra(0)}
    group = classify_group(1, versions, IOM)
    assert group.status is Agreement.CONFLICT and group.majority is None
    assert group.flags["OF"] is Agreement.CONFLICT


def test_no_box_tie_has_no_majority():
    assert majority_call({"r1": vertebra(0), "r2": None}) is None
    assert majority_call({"r1": vertebra(0), "r2": None, "r3": None}).present is False


def test_the_near_identical_box_wins_over_a_small_stray_box_inside_the_same_vertebra():
    big = vertebra(0, source="r1")
    near = Vertebra(big.box.translated(1, 1), source="r2")
    inner = Vertebra(Box(big.box.x1 + 20, big.box.y1 + 10, big.box.x1 + 30, big.box.y1 + 20), {SN}, source="r2")
    # IoM of the inner box with the big one is 1.0, higher than the near-identical box's; IoU decides.
    groups = match_vertebrae({"r1": [big], "r2": [inner, near]}, IOM)
    assert len(groups) == 2
    paired = next(g for g in groups if g.versions["r1"] is not None)
    assert paired.versions["r2"] is near
    alone = next(g for g in groups if g.versions["r1"] is None)
    assert alone.versions["r2"] is inner


def test_iom_and_iou_rules_and_the_threshold_is_strict():
    a = Vertebra(Box(0, 0, 100, 100), source="r1")
    inside = Vertebra(Box(0, 0, 50, 50), source="r2")  # IoM 1.0, IoU 0.25
    assert len(match_vertebrae({"r1": [a], "r2": [inside]}, MatchSettings("iom", 0.5))) == 1
    assert len(match_vertebrae({"r1": [a], "r2": [inside]}, MatchSettings("iou", 0.5))) == 2
    assert len(match_vertebrae({"r1": [a], "r2": [inside]}, MatchSettings("iou", 0.2))) == 1
    half = Vertebra(Box(50, 0, 150, 100), source="r2")  # IoM exactly 0.5: not a hit (the paper: above 0.5)
    assert len(match_vertebrae({"r1": [a], "r2": [half]}, MatchSettings("iom", 0.5))) == 2
    assert len(match_vertebrae({"r1": [a], "r2": [half]}, MatchSettings("iom", 0.49))) == 1


def test_a_box_joins_a_group_only_when_it_hits_every_member():
    r1 = Vertebra(Box(0, 0, 100, 100), source="r1")
    r2 = Vertebra(Box(40, 0, 140, 100), source="r2")  # hits r1 (IoM 0.6)
    r3 = Vertebra(Box(75, 0, 175, 100), source="r3")  # hits r2 (0.65) but not r1 (0.25)
    groups = match_vertebrae({"r1": [r1], "r2": [r2], "r3": [r3]}, IOM)
    assert len(groups) == 2
    assert groups[0].drawn_by == ("r1", "r2") and groups[1].drawn_by == ("r3",)


def test_each_group_holds_at_most_one_box_per_reader():
    twice = [vertebra(0, source="r2"), Vertebra(vertebra(0).box.translated(2, 2), source="r2")]
    groups = match_vertebrae({"r1": [vertebra(0)], "r2": twice, "r3": [vertebra(0, source="r3")]}, IOM)
    assert len(groups) == 2
    assert sorted(len(g.drawn_by) for g in groups) == [1, 3]


def test_a_reader_with_no_boxes_is_missing_everywhere():
    groups = match_vertebrae({"r1": [], "r2": column(3, source="r2"), "r3": column(3, source="r3")}, IOM)
    assert len(groups) == 3
    assert all(g.status is Agreement.MISSING and g.missing_for == ("r1",) for g in groups)
    assert all(g.majority.present for g in groups)
    assert match_vertebrae({"r1": [], "r2": []}, IOM) == []


def test_reader_order_does_not_change_the_groups():
    rng = np.random.default_rng(3)
    readers = {}
    for reader in ("r1", "r2", "r3"):
        boxes = [Vertebra(v.box.translated(*rng.normal(0, 2, 2)), source=reader) for v in column(7)]
        keep = rng.random(len(boxes)) > 0.15
        readers[reader] = [b for b, k in zip(boxes, keep, strict=True) if k]
    readers["r2"].append(Vertebra(Box(150, 300, 190, 340), source="r2"))

    def as_sets(groups):
        return sorted(sorted((r, v.box.as_list()) for r, v in g.versions.items() if v is not None) for g in groups)

    expected = as_sets(match_vertebrae(readers, IOM))
    for order in itertools.permutations(readers):
        assert as_sets(match_vertebrae({r: readers[r] for r in order}, IOM)) == expected


def test_boxes_drawn_differently_are_flagged_with_the_same_label():
    moved = vertebra(0, dy=14, source="r3")  # still a hit (IoM 0.65) but IoU 0.48
    group = classify_group(1, {"r1": vertebra(0), "r2": vertebra(0, source="r2"), "r3": moved}, IOM)
    assert group.status is Agreement.UNANIMOUS
    assert group.boxes_differ and group.is_disagreement and group.kinds == ("box",)
    assert group.min_iou == pytest.approx(26 * 60 / (54 * 60), abs=1e-6)
    # The median box ignores the one moved box.
    assert group.majority.box == vertebra(0).box
    relaxed = classify_group(1, dict(group.versions), MatchSettings(box_tolerance=0.4))
    assert not relaxed.boxes_differ and not relaxed.is_disagreement


def test_median_box_and_common_level():
    boxes = [Box(0, 0, 10, 10), Box(2, 2, 12, 12), Box(100, 100, 110, 110)]
    assert median_box(boxes) == Box(2, 2, 12, 12)
    call = majority_call({"r1": vertebra(1), "r2": vertebra(1).with_changes(level="L1"), "r3": vertebra(1)})
    assert call.level == "T12"


@pytest.mark.parametrize(
    "kwargs",
    [{"measure": "giou"}, {"threshold": 1.0}, {"threshold": -0.1}, {"threshold": "0.5"}, {"box_tolerance": True}],
)
def test_bad_match_settings_are_refused(kwargs):
    with pytest.raises(ConsensusError):
        MatchSettings(**kwargs)


def test_a_group_needs_a_box():
    with pytest.raises(ConsensusError):
        classify_group(1, {"r1": None, "r2": None}, IOM)

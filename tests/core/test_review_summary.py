"""Slice statuses, findings, low confidence, reader disagreement and the case-list filters."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from core.annotations.model import Box, Disease, SliceAnnotation, Vertebra
from core.progress import run
from core.review.confidence import EDGE_PX, ModelCall, at_edge, close_calls, is_low_confidence, is_unsure
from core.review.filters import SliceFilter
from core.review.status import SliceStatus, slice_status
from core.review.summary import (
    SliceSummary,
    quick_status,
    readers_disagree,
    scan_study,
    summarize,
)
from core.study.layout import Study

A = Box(0, 0, 40, 20)
B = Box(0, 25, 40, 45)


def annotation(*vertebrae: Vertebra, reviewed: bool = False) -> SliceAnnotation:
    return SliceAnnotation(90, 60, vertebrae, reviewed=reviewed)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({}, SliceStatus.UNREAD),
        ({"has_model": True}, SliceStatus.PRE_ANNOTATED),
        ({"has_model": True, "has_mine": True}, SliceStatus.IN_REVIEW),
        ({"has_mine": True, "reviewed": True}, SliceStatus.REVIEWED),
        ({"has_mine": True, "reviewed": True, "has_consensus": True}, SliceStatus.CONSENSUS),
    ],
)
def test_status_follows_the_workflow(flags, expected):
    base = {"has_consensus": False, "has_mine": False, "reviewed": False, "has_model": False}
    assert slice_status(**(base | flags)) == expected


def test_readers_disagree_on_count_label_or_position_but_not_on_jitter():
    one = annotation(Vertebra(A, frozenset({Disease.OVCF})), Vertebra(B))
    jittered = annotation(Vertebra(B.translated(1, 2)), Vertebra(A.translated(-1, 1), frozenset({Disease.OVCF})))
    assert not readers_disagree([one, jittered])
    assert readers_disagree([one, annotation(Vertebra(A, frozenset({Disease.OF})), Vertebra(B))])  # label
    assert readers_disagree([one, annotation(Vertebra(A, frozenset({Disease.OVCF})))])  # count
    moved = annotation(Vertebra(A, frozenset({Disease.OVCF})), Vertebra(Box(50, 30, 80, 50)))
    assert readers_disagree([one, moved])  # a box without partner
    assert readers_disagree([one, jittered, moved]) and not readers_disagree([one]) and not readers_disagree([])


def test_low_confidence_means_a_borderline_score_or_a_close_call_at_the_default_threshold():
    """Without the result's thresholds every disease is judged against 0.5: odds within a factor of 2 of even."""
    assert not is_low_confidence(Vertebra(A, frozenset({Disease.OVCF}), {"OVCF": 0.95, "NORMAL": 0.02}, score=0.99))
    assert is_low_confidence(Vertebra(A, frozenset({Disease.OVCF}), {"OVCF": 0.6, "NORMAL": 0.02}, score=0.99))
    assert is_low_confidence(Vertebra(A, probabilities={"OVCF": 0.4, "NORMAL": 0.5}, score=0.99))  # nearly called
    assert not is_low_confidence(Vertebra(A, frozenset({Disease.OVCF}), {"OVCF": 0.68}, score=0.99))  # odds 2.1
    assert not is_low_confidence(Vertebra(A, probabilities={"OVCF": 0.32, "NORMAL": 0.3}, score=0.99))  # odds 0.47
    assert is_low_confidence(Vertebra(A, score=0.79)) and not is_low_confidence(Vertebra(A, score=0.8))
    unsure = Vertebra(A, probabilities={"NORMAL": 0.3}, score=0.5)
    assert not is_low_confidence(unsure.with_changes(source="r1"))  # a reader's box has no confidence
    assert not is_low_confidence(Vertebra(A, probabilities={"NORMAL": 0.5}, score=0.99))  # NORMAL calls nothing


def test_a_close_call_is_judged_against_the_threshold_the_model_called_with():
    """The same probability is a sure call far above a low threshold and a close one near it, either side."""
    ovcf = Vertebra(A, frozenset({Disease.OVCF}), {"OVCF": 0.5, "OF": 0.01}, score=0.99)
    assert is_low_confidence(ovcf) and not is_low_confidence(ovcf, {"OVCF": 0.2, "OF": 0.4})  # odds 4x its 0.2
    assert close_calls(ovcf, {"OVCF": 0.4, "OF": 0.4}) == ["OVCF"]
    almost = Vertebra(A, probabilities={"OVCF": 0.18, "KD": 0.3}, score=0.99)  # called nothing
    assert close_calls(almost, {"OVCF": 0.26, "KD": 0.9}) == ["OVCF"]  # 0.18 under 0.26: within 2x in odds
    assert close_calls(almost, {"OVCF": 0.26, "KD": 0.45}) == ["OVCF", "KD"]
    assert close_calls(almost, {"OVCF": 0.6, "KD": 0.9}) == []
    # a threshold missing from the result's map falls back to 0.5
    assert close_calls(Vertebra(A, probabilities={"SN": 0.55}), {"OVCF": 0.2}) == ["SN"]


def test_a_disease_called_on_a_body_at_the_image_edge_is_unsure():
    """A body cut by the edge looks compressed: a disease called on a box within EDGE_PX of any edge is unsure,
    however sure the call; a normal one is not, nor a box further in, nor any where the image size is unknown."""
    size = (90, 60)
    sure = {"OVCF": 0.99, "NORMAL": 0.01}
    inside = Box(10, 10, 50, 50)
    cut = {"top": Box(10, 1, 50, 40), "bottom": Box(10, 20, 50, 59), "left": Box(0, 10, 40, 50),
           "right": Box(48, 10, 90, 50)}
    for where, box in cut.items():
        ovcf = Vertebra(box, frozenset({Disease.OVCF}), sure, score=0.99)
        assert at_edge(ovcf, size), where
        assert is_low_confidence(ovcf, {"OVCF": 0.3}, image_size=size), where
        assert not is_low_confidence(ovcf, {"OVCF": 0.3}), where  # the size unknown: the edge is not judged
        assert not is_low_confidence(ovcf.with_changes(diseases=frozenset(), probabilities={"NORMAL": 0.99}),
                                     {"OVCF": 0.3}, image_size=size), where
        assert not is_low_confidence(ovcf.with_changes(source="r1"), image_size=size), where  # a reader's box
    ovcf = Vertebra(inside, frozenset({Disease.OVCF}), sure, score=0.99)
    assert not at_edge(ovcf, size) and not is_unsure(ovcf, ModelCall({"OVCF": 0.3}, size))
    near = Vertebra(Box(10, 20, 50, 60 - EDGE_PX - 0.5), frozenset({Disease.OVCF}), sure, score=0.99)
    assert not at_edge(near, size) and at_edge(near.with_changes(box=Box(10, 20, 50, 60 - EDGE_PX)), size)
    assert not is_unsure(Vertebra(cut["top"], frozenset({Disease.OVCF}), sure, score=0.99), None)


def test_the_summary_judges_a_result_with_its_own_thresholds(study):
    key = ("case-0001", "s001")
    box = Vertebra(Box(10, 10, 50, 30), frozenset({Disease.OVCF}), {"OVCF": 0.6, "NORMAL": 0.1}, score=0.99)
    study.save_annotation(SliceAnnotation(90, 60, (box,), model="m"), *key, model="m")
    assert summarize(study, key, "r1", "m").low_confidence  # 0.6 against 0.5
    study.save_annotation(SliceAnnotation(90, 60, (box,), model="m", thresholds={"OVCF": 0.2}), *key, model="m")
    assert not summarize(study, key, "r1", "m").low_confidence  # 0.6 against 0.2: odds 6x
    cut = box.with_changes(box=Box(10, 30, 50, 60))  # the same call on a body the image's bottom edge cuts
    study.save_annotation(SliceAnnotation(90, 60, (cut,), model="m", thresholds={"OVCF": 0.2}), *key, model="m")
    assert summarize(study, key, "r1", "m").low_confidence


@pytest.fixture()
def study(tmp_path) -> Study:
    study = Study.create(tmp_path / "study")
    folder = study.root / "images" / "case-0001"
    folder.mkdir(parents=True)
    for number in (1, 2, 3):
        Image.fromarray(np.zeros((60, 90), np.uint8)).save(folder / f"s{number:03d}.png")
    return study


def test_summaries_from_files(study):
    model = annotation(Vertebra(A, frozenset({Disease.KD}), {"KD": 0.52}, 0.99), Vertebra(B, score=0.99))
    study.save_annotation(model, "case-0001", "s001", model="m1")
    study.save_annotation(annotation(Vertebra(A), reviewed=True), "case-0001", "s002", reader="r1")
    study.save_annotation(annotation(Vertebra(A, frozenset({Disease.SN}))), "case-0001", "s002", reader="r2")
    bad = study.reader_path("r1", "case-0001", "s003")
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_text("[]")
    first = summarize(study, ("case-0001", "s001"), "r1", "m1")
    assert first == SliceSummary(SliceStatus.PRE_ANNOTATED, frozenset({"KD"}), 2, low_confidence=True, model_boxes=2)
    second = summarize(study, ("case-0001", "s002"), "r1", "m1")
    assert second.status == SliceStatus.REVIEWED and second.diseases == {"NORMAL"} and second.disagreement
    third = summarize(study, ("case-0001", "s003"), "r1", "m1")
    assert third.problem and "s003.json" in third.problem and third.status == SliceStatus.UNREAD
    assert quick_status(study, ("case-0001", "s002"), "r1", "m1") == SliceStatus.IN_REVIEW
    events = []
    scanned = run(scan_study(study, "r1", "m1"), events.append)
    assert scanned[("case-0001", "s001")] == first and len(scanned) == 3
    assert events[-1].step == events[-1].total == 3


def test_filters():
    key = ("case-0012", "s004")
    summary = SliceSummary(SliceStatus.IN_REVIEW, frozenset({"OVCF"}), 3, low_confidence=True)
    assert not SliceFilter().active and SliceFilter(text="x").active
    assert SliceFilter(text="CASE-0012").matches(key, summary)
    assert SliceFilter(text="0012/s004").matches(key, summary)
    assert not SliceFilter(text="0013").matches(key, summary)
    assert SliceFilter(disease="OVCF", low_confidence=True).matches(key, summary)
    assert not SliceFilter(disease="KD").matches(key, summary)
    assert not SliceFilter(disagreement=True).matches(key, summary)
    assert not SliceFilter(statuses=frozenset({SliceStatus.REVIEWED})).matches(key, summary)
    assert not SliceFilter(problems_only=True).matches(key, summary)


def test_low_confidence_clears_once_the_reader_has_reviewed_the_slice(study):
    unsure = annotation(Vertebra(A, frozenset({Disease.OVCF}), {"OVCF": 0.51}, 0.99))
    study.save_annotation(unsure, "case-0001", "s001", model="m1")
    key = ("case-0001", "s001")
    assert summarize(study, key, "r1", "m1").low_confidence
    study.save_annotation(annotation(Vertebra(A)), *key, reader="r1")
    assert summarize(study, key, "r1", "m1").low_confidence  # started, not finished
    study.save_annotation(annotation(Vertebra(A), reviewed=True), *key, reader="r1")
    summary = summarize(study, key, "r1", "m1")
    assert summary.status == SliceStatus.REVIEWED and not summary.low_confidence

"""A model that found no vertebrae, or clearly too few, on a slice: the rule, the status and the case list's filter."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from core.annotations.model import Box, SliceAnnotation, Vertebra
from core.imaging.image import SliceImage
from core.progress import run
from core.resources import resources_dir
from core.review.filters import SliceFilter
from core.review.session import ReviewSession
from core.review.shortfall import DEMO_HINT, ModelShortfall, ShortfallKind, judge, room_for
from core.review.status import SHORTFALL_STATUSES, SliceStatus, slice_status, with_shortfall
from core.review.summary import SliceSummary, judge_cases, scan_study
from core.study.layout import Study
from tests.bundled_models import BUNDLED_ID

CASE = "case-0001"
NONE = ShortfallKind.NONE
FEWER_THAN_CASE = ShortfallKind.FEWER_THAN_CASE
FEWER_THAN_HEIGHT = ShortfallKind.FEWER_THAN_HEIGHT


def kind(shortfall: ModelShortfall | None) -> ShortfallKind | None:
    return None if shortfall is None else shortfall.kind


@pytest.mark.parametrize(
    ("found", "others", "height_mm", "expected"),
    [
        (None, (8, 8), 333.0, None),  # the model has not run on the slice
        (0, (), None, NONE),  # ran and found nothing: always said
        (0, (8, 9, 8), 333.0, NONE),
        (4, (8, 9, 8), None, FEWER_THAN_CASE),  # at most half the median of the other slices
        (5, (8, 9, 8), None, None),
        (4, (8,), None, None),  # one other slice is not enough to compare with
        (1, (2, 3, 2), None, None),  # a case where the model finds few everywhere: rule 2 cannot tell
        (2, (2, 3, 2), 333.0, FEWER_THAN_HEIGHT),  # ... but the slice's height can (room for 8)
        (4, (), 333.0, FEWER_THAN_HEIGHT),
        (5, (), 333.0, None),
        (1, (), 150.0, None),  # room for 3: too short a slice to judge
        (2, (), 160.0, FEWER_THAN_HEIGHT),  # room for 4
        (12, (), 2000.0, FEWER_THAN_HEIGHT),  # room capped at the 24 presacral vertebrae
        (13, (), 2000.0, None),
        (3, (8, 8), 333.0, FEWER_THAN_CASE),  # the case comes first
    ],
)
def test_the_rule(found, others, height_mm, expected):
    assert kind(judge(found, others=others, height_mm=height_mm)) == expected


def test_room_for_a_slice_of_known_height():
    assert room_for(None) == 0 and room_for(float("nan")) == 0 and room_for(-5.0) == 0
    assert room_for(159.0) == 3 and room_for(160.0) == 4 and room_for(333.0) == 8 and room_for(5000.0) == 24


def test_what_the_reader_is_told():
    assert ModelShortfall(NONE).message() == "The model found no vertebrae on this slice."
    assert ModelShortfall(NONE).message(demo=True).endswith(DEMO_HINT)
    assert "phantoms" in DEMO_HINT and "real CT" in DEMO_HINT
    few = judge(1, others=(8, 8, 9)).message()
    assert few == "The model found only 1 vertebra here, fewer than on the other slices of this case (typically 8)."
    tall = judge(2, height_mm=333.4).message()
    assert tall == ("The model found only 2 vertebrae here; a slice through the spine 333 mm tall usually shows 8 or "
                    "more.")


def test_a_short_pre_annotation_gets_its_own_status_until_the_reader_starts():
    none, few = ModelShortfall(NONE), ModelShortfall(FEWER_THAN_CASE, 2, 8)
    base = {"has_consensus": False, "has_mine": False, "reviewed": False, "has_model": True}
    assert slice_status(**base) == SliceStatus.PRE_ANNOTATED
    assert slice_status(**base, shortfall=none) == SliceStatus.MODEL_FOUND_NONE
    assert slice_status(**base, shortfall=few) == SliceStatus.MODEL_FOUND_FEW
    assert slice_status(**(base | {"has_mine": True}), shortfall=none) == SliceStatus.IN_REVIEW
    assert slice_status(**(base | {"has_consensus": True}), shortfall=none) == SliceStatus.CONSENSUS
    assert with_shortfall(SliceStatus.MODEL_FOUND_FEW, None) == SliceStatus.PRE_ANNOTATED  # judged again
    assert with_shortfall(SliceStatus.REVIEWED, none) == SliceStatus.REVIEWED
    assert with_shortfall(SliceStatus.UNREAD, none) == SliceStatus.UNREAD
    shown = SliceFilter(statuses=SHORTFALL_STATUSES)
    assert shown.matches(("c", "s"), SliceSummary(SliceStatus.MODEL_FOUND_NONE))
    assert shown.matches(("c", "s"), SliceSummary(SliceStatus.MODEL_FOUND_FEW))
    assert not shown.matches(("c", "s"), SliceSummary(SliceStatus.PRE_ANNOTATED))


def boxes(count: int) -> tuple[Vertebra, ...]:
    return tuple(Vertebra(Box(10, 4 + 6 * i, 40, 8 + 6 * i), score=0.99) for i in range(count))


def make_study(tmp_path, counts: dict[str, int | None], *, height: int = 60) -> Study:
    """One case of PNG slices; the model's result on each slice has ``counts[slice]`` boxes (None: not run)."""
    study = Study.create(tmp_path / "study")
    folder = study.root / "images" / CASE
    folder.mkdir(parents=True)
    for name, count in counts.items():
        Image.fromarray(np.zeros((height, 90), np.uint8)).save(folder / f"{name}.png")
        if count is not None:
            study.save_annotation(SliceAnnotation(90, height, boxes(count), model="m1"), CASE, name, model="m1")
    return study


def test_the_scan_judges_each_slice_against_its_case(tmp_path):
    study = make_study(tmp_path, {"s001": 0, "s002": 8, "s003": 9, "s004": 3, "s005": 8, "s006": None})
    study.save_annotation(SliceAnnotation(90, 60, (), reader="r1"), CASE, "s001", reader="r1")
    found = run(scan_study(study, "r2", "m1"), lambda progress: None)
    statuses = {key[1]: summary.status for key, summary in found.items()}
    assert statuses == {"s001": SliceStatus.MODEL_FOUND_NONE, "s002": SliceStatus.PRE_ANNOTATED,
                        "s003": SliceStatus.PRE_ANNOTATED, "s004": SliceStatus.MODEL_FOUND_FEW,
                        "s005": SliceStatus.PRE_ANNOTATED, "s006": SliceStatus.UNREAD}
    assert found[(CASE, "s004")].shortfall == ModelShortfall(FEWER_THAN_CASE, 3, 8)
    assert found[(CASE, "s001")].model_boxes == 0 and found[(CASE, "s006")].model_boxes is None
    mine = run(scan_study(study, "r1", "m1"), lambda progress: None)[(CASE, "s001")]
    assert mine.status == SliceStatus.IN_REVIEW and mine.shortfall == ModelShortfall(NONE)  # the notice's business


def test_judging_whole_cases_again_after_one_slice_changed():
    key = (CASE, "s001")
    summaries = {(CASE, f"s00{n}"): SliceSummary(SliceStatus.PRE_ANNOTATED, model_boxes=8) for n in (1, 2, 3)}
    summaries[key] = SliceSummary(SliceStatus.PRE_ANNOTATED, model_boxes=2)  # the model ran again, found two
    judged = judge_cases(summaries)
    assert judged[key].status == SliceStatus.MODEL_FOUND_FEW and judged[(CASE, "s002")].shortfall is None
    summaries[key] = SliceSummary(SliceStatus.MODEL_FOUND_FEW, model_boxes=7)  # and again: now it is fine
    assert judge_cases(summaries)[key].status == SliceStatus.PRE_ANNOTATED
    other_case = {("case-0002", "s001"): SliceSummary(SliceStatus.PRE_ANNOTATED, model_boxes=2), key: summaries[key]}
    assert judge_cases(other_case)[("case-0002", "s001")].shortfall is None  # no other slice of its own case


def test_the_slice_height_comes_from_the_case_row_spacing_read_once(tmp_path, monkeypatch):
    study = make_study(tmp_path, {"s001": 2, "s002": 2, "s003": 3, "s004": 13}, height=333)
    reads = []

    def read_image(self, case, slice_id):
        reads.append((case, slice_id))
        return SliceImage(np.zeros((333, 90), np.float32), spacing_mm=(1.0, 0.8), hu=True)

    monkeypatch.setattr(Study, "read_image", read_image)
    found = run(scan_study(study, "r1", "m1"), lambda progress: None)
    assert reads == [(CASE, "s001")]  # one image per case, and only because a count was low enough to matter
    assert found[(CASE, "s001")].shortfall == ModelShortfall(FEWER_THAN_HEIGHT, 2, 8, 333.0)
    assert found[(CASE, "s003")].shortfall == ModelShortfall(FEWER_THAN_HEIGHT, 3, 8, 333.0)
    assert found[(CASE, "s004")].shortfall is None and found[(CASE, "s004")].height_mm is None
    session = ReviewSession(study, "r1", model_id="m1", writable=False)
    assert session.summary((CASE, "s002")).status == SliceStatus.MODEL_FOUND_FEW


def test_the_session_says_none_on_its_own(tmp_path):
    study = make_study(tmp_path, {"s001": 0, "s002": 3})
    session = ReviewSession(study, "r1", model_id="m1", writable=False)
    assert session.summary((CASE, "s001")).status == SliceStatus.MODEL_FOUND_NONE
    assert session.summary((CASE, "s002")).status == SliceStatus.PRE_ANNOTATED  # PNG: no height, one other slice


def test_it_never_fires_on_the_demo_study_where_the_model_finds_the_vertebrae():
    demo = resources_dir() / "demo"
    if not Study.is_study(demo):
        pytest.skip("no bundled demo study")
    study = Study.open(demo)
    found = run(scan_study(study, "a-new-reader", BUNDLED_ID), lambda progress: None)
    assert found and all(summary.model_boxes for summary in found.values())
    assert [key for key, summary in found.items() if summary.shortfall is not None] == []
    assert not {summary.status for summary in found.values()} & SHORTFALL_STATUSES
    assert any(summary.height_mm for summary in found.values())  # the height rule was checked, not skipped

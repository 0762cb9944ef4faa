"""The low-confidence rule marks a minority of the bundled demo study's slices (the figure its docstring states)."""

from __future__ import annotations

from pathlib import Path

from core.review.confidence import is_low_confidence
from core.review.summary import summarize
from core.study.layout import Study
from tests.bundled_models import BUNDLED_ID

DEMO = Path(__file__).resolve().parents[2] / "resources" / "demo"


def test_the_rule_marks_what_its_docstring_says_on_the_demo_slices():
    study = Study.open(DEMO)
    keys = study.all_slices()
    boxes = marked_boxes = marked_slices = 0
    for key in keys:
        model = study.load_annotation(*key, model=BUNDLED_ID)
        flags = [is_low_confidence(v) for v in model.vertebrae]
        boxes, marked_boxes, marked_slices = boxes + len(flags), marked_boxes + sum(flags), marked_slices + any(flags)
    assert (len(keys), boxes) == (60, 594)
    assert (marked_boxes, marked_slices) == (32, 25)
    # the case list's mark: the same rule on the slices not finished (the demo's first case has the readers'
    # consensus, which finishes its 10 slices, none of them marked)
    finished = {key for key in keys if study.consensus_path(*key).is_file()}
    assert len(finished) == 10
    marked = [key for key in keys if summarize(study, key, "newcomer", BUNDLED_ID).low_confidence]
    assert len(marked) == 25 and not finished & set(marked)

"""The low-confidence rule marks a minority of the bundled demo study's slices (the figure its docstring states)."""

from __future__ import annotations

from pathlib import Path

from core.review.confidence import ModelCall, is_unsure
from core.review.summary import summarize
from core.study.layout import Study
from tests.bundled_models import BUNDLED_ID

DEMO = Path(__file__).resolve().parents[2] / "resources" / "demo"


def test_the_rule_marks_what_its_docstring_says_on_the_demo_slices():
    study = Study.open(DEMO)
    keys = study.all_slices()
    boxes = marked_boxes = 0
    unsure_slices = set()
    for key in keys:
        model = study.load_annotation(*key, model=BUNDLED_ID)
        assert model.thresholds is not None  # written with the result: those the classifier called with
        flags = [is_unsure(v, ModelCall.of(model)) for v in model.vertebrae]
        boxes, marked_boxes = boxes + len(flags), marked_boxes + sum(flags)
        if any(flags):
            unsure_slices.add(key)
    assert (len(keys), boxes) == (60, 601)
    assert (marked_boxes, len(unsure_slices)) == (69, 49)
    # the case list's mark: the same rule on the slices not finished (the demo's first case has the readers'
    # consensus, which finishes its 10 slices, 9 of the 49 among them)
    finished = {key for key in keys if study.consensus_path(*key).is_file()}
    assert len(finished) == 10 and len(finished & unsure_slices) == 9
    marked = {key for key in keys if summarize(study, key, "newcomer", BUNDLED_ID).low_confidence}
    assert marked == unsure_slices - finished

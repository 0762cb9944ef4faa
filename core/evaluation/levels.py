"""How often :mod:`core.models.levels` gives the right level, measured on slices whose boxes carry true levels (a
segmented CT imported as a study, or a reader's annotated slices).

Two anchors, as the app has them:

- **a set level**: on each slice, the level of one box is given (as a user sets it) and the others are counted
  along the spine from it; every box of the slice is tried as the anchor in turn;
- **one slice for the case**: the lowest box of the slice with the most boxes (the one nearest the middle of the
  case among equals, as a reader would set it on the midline) is set, and the levels reach the case's other slices
  through boxes that hit (``propagate_levels``).

The sacrum anchor needs a slice that shows S1 and a sacrum model, which only a detector package carries: it is
measured where both are given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.models.levels import assign_levels, propagate_levels, slice_levels, spine_order

CaseSlices = Sequence[tuple[np.ndarray, Sequence[str | None]]]


@dataclass(frozen=True)
class LevelScore:
    right: int
    total: int

    @property
    def rate(self) -> float | None:
        return self.right / self.total if self.total else None

    def to_json(self) -> dict[str, Any]:
        return {"right": self.right, "total": self.total, "rate": None if self.rate is None else round(self.rate, 4)}


def _score(found: Sequence[str | None], truth: Sequence[str | None]) -> tuple[int, int]:
    pairs = [(f, t) for f, t in zip(found, truth, strict=True) if t is not None]
    return sum(f == t for f, t in pairs), len(pairs)


def set_level_score(cases: Mapping[str, CaseSlices]) -> LevelScore:
    right = total = 0
    for slices in cases.values():
        for boxes, truth in slices:
            for anchor, level in enumerate(truth):
                if level is not None:
                    r, t = _score(assign_levels(boxes, (anchor, level)), truth)
                    right, total = right + r, total + t
    return LevelScore(right, total)


def one_set_level(slices: CaseSlices) -> list[list[str | None]] | None:
    """The levels of a case's slices after a reader sets one: on the slice with the most boxes that have a true level
    (a reader sets a level on a body they recognise, not on a model's false box; then the most boxes, then the one
    nearest the middle), the lowest box with a true level gets it, and the levels reach the other slices through
    boxes that hit (``propagate_levels``). The levels per slice, or None when no box has a true level."""
    if not slices:
        return None
    middle = (len(slices) - 1) / 2
    source = max(range(len(slices)), key=lambda i: (sum(lv is not None for lv in slices[i][1]), len(slices[i][0]),
                                                    -abs(i - middle)))
    boxes, truth = slices[source]
    known = [int(i) for i in spine_order(boxes)[::-1] if truth[i] is not None]
    if not known:
        return None
    levels: list[list[str | None]] = [[None] * len(b) for b, _ in slices]
    levels[source] = assign_levels(boxes, (known[0], str(truth[known[0]])))
    confidence = [1.0 if i == source else 0.0 for i in range(len(slices))]
    return propagate_levels([b for b, _ in slices], levels, confidence)


def propagated_score(cases: Mapping[str, CaseSlices]) -> LevelScore:
    right = total = 0
    for slices in cases.values():
        found = one_set_level(slices)
        if found is None:
            continue
        for levels, (_, true) in zip(found, slices, strict=True):
            r, t = _score(levels, true)
            right, total = right + r, total + t
    return LevelScore(right, total)


def sacrum_score(cases: Mapping[str, CaseSlices], model: Mapping[str, Any] | None) -> LevelScore:
    """Slices whose lowest true box is S1, levelled from the sacrum model alone."""
    right = total = 0
    for slices in cases.values():
        for boxes, truth in slices:
            if model is None or not len(truth) or truth[int(spine_order(boxes)[-1])] != "S1":
                continue
            r, t = _score(slice_levels(boxes, model)[0], truth)
            right, total = right + r, total + t
    return LevelScore(right, total)


def level_report(cases: Mapping[str, CaseSlices], sacrum_model: Mapping[str, Any] | None = None) -> dict[str, Any]:
    slices = sum(len(s) for s in cases.values())
    boxes = sum(len(b) for s in cases.values() for b, _ in s)
    return {"cases": len(cases), "slices": slices, "boxes": boxes,
            "set_level": set_level_score(cases).to_json(), "propagated": propagated_score(cases).to_json(),
            "sacrum": sacrum_score(cases, sacrum_model).to_json()}


def study_cases(root, reader: str | None = None) -> dict[str, list[tuple[np.ndarray, list[str | None]]]]:
    """Every annotated slice of a study (a reader's files, or the consensus) as (boxes, true levels) per case."""
    from core.study.layout import Study

    study = Study.open(root)
    cases: dict[str, list[tuple[np.ndarray, list[str | None]]]] = {}
    for case, slice_id in study.all_slices():
        annotation = study.load_annotation(case, slice_id, reader=reader)
        if annotation is None or not annotation.vertebrae:
            continue
        boxes = np.array([v.box.as_list() for v in annotation.vertebrae], dtype=np.float64)
        cases.setdefault(case, []).append((boxes, [v.level for v in annotation.vertebrae]))
    return cases

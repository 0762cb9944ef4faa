"""Choosing slices in the case list: search by case id, has disease X, low confidence, disagreement, status."""

from __future__ import annotations

from dataclasses import dataclass

from core.review.status import SliceStatus
from core.review.summary import SliceSummary
from core.study.slice_key import SliceKey, slice_key


@dataclass(frozen=True)
class SliceFilter:
    """All given conditions must hold. ``disease`` is a code (``OVCF``…, or ``NORMAL``)."""

    text: str = ""
    disease: str | None = None
    low_confidence: bool = False
    disagreement: bool = False
    statuses: frozenset[SliceStatus] | None = None
    problems_only: bool = False

    @property
    def active(self) -> bool:
        return self != SliceFilter()

    def matches(self, key: SliceKey, summary: SliceSummary) -> bool:
        text = self.text.strip().lower()
        if text and text not in slice_key(key).text.lower():
            return False
        if self.disease is not None and self.disease not in summary.diseases:
            return False
        if self.low_confidence and not summary.low_confidence:
            return False
        if self.disagreement and not summary.disagreement:
            return False
        if self.statuses is not None and summary.status not in self.statuses:
            return False
        return not (self.problems_only and not summary.problem)

"""Where a slice stands in one reader's review: unread → pre-annotated → in review → reviewed → consensus.

A model result that falls short (:mod:`core.review.shortfall`: no vertebra found, or clearly too few) is not
called pre-annotated: the slice says "model found none" or "model found too few" until the reader starts on it.
"""

from __future__ import annotations

from enum import StrEnum

from core.review.shortfall import ModelShortfall, ShortfallKind


class SliceStatus(StrEnum):
    UNREAD = "unread"  # nothing yet: no model result, no file of mine
    PRE_ANNOTATED = "pre-annotated"  # the model's result is there, I have not started
    MODEL_FOUND_NONE = "model found none"  # the model ran and found no vertebra, I have not started
    MODEL_FOUND_FEW = "model found too few"  # the model found clearly too few vertebrae, I have not started
    IN_REVIEW = "in review"  # I have a file, not yet marked reviewed
    REVIEWED = "reviewed"  # I marked it reviewed (Enter)
    CONSENSUS = "consensus"  # the readers' agreed result exists


#: Order of the workflow, for sorting and for counting progress.
STATUS_ORDER: tuple[SliceStatus, ...] = tuple(SliceStatus)
#: The statuses of a model result the reader has not started on.
MODEL_STATUSES = frozenset({SliceStatus.PRE_ANNOTATED, SliceStatus.MODEL_FOUND_NONE, SliceStatus.MODEL_FOUND_FEW})
#: The statuses of a slice the reader has finished with: no more notices or low-confidence marks about the model.
FINISHED_STATUSES = frozenset({SliceStatus.REVIEWED, SliceStatus.CONSENSUS})
#: The statuses of a model result that falls short (the case list's "Model found none or too few" filter).
SHORTFALL_STATUSES = frozenset({SliceStatus.MODEL_FOUND_NONE, SliceStatus.MODEL_FOUND_FEW})


def slice_status(*, has_consensus: bool, has_mine: bool, reviewed: bool, has_model: bool,
                 shortfall: ModelShortfall | None = None) -> SliceStatus:
    """The status from what exists: the consensus wins, then my review, then the model's result."""
    if has_consensus:
        return SliceStatus.CONSENSUS
    if has_mine:
        return SliceStatus.REVIEWED if reviewed else SliceStatus.IN_REVIEW
    return with_shortfall(SliceStatus.PRE_ANNOTATED, shortfall) if has_model else SliceStatus.UNREAD


def with_shortfall(status: SliceStatus, shortfall: ModelShortfall | None) -> SliceStatus:
    """``status`` once the model result is judged: a pre-annotation that falls short says how; others stay."""
    if status not in MODEL_STATUSES:
        return status
    if shortfall is None:
        return SliceStatus.PRE_ANNOTATED
    return SliceStatus.MODEL_FOUND_NONE if shortfall.kind is ShortfallKind.NONE else SliceStatus.MODEL_FOUND_FEW

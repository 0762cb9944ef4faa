"""Where a slice stands in one reader's review: unread → pre-annotated → in review → reviewed → consensus."""

from __future__ import annotations

from enum import StrEnum


class SliceStatus(StrEnum):
    UNREAD = "unread"  # nothing yet: no model result, no file of mine
    PRE_ANNOTATED = "pre-annotated"  # the model's result is there, I have not started
    IN_REVIEW = "in review"  # I have a file, not yet marked reviewed
    REVIEWED = "reviewed"  # I marked it reviewed (Enter)
    CONSENSUS = "consensus"  # the readers' agreed result exists


#: Order of the workflow, for sorting and for counting progress.
STATUS_ORDER: tuple[SliceStatus, ...] = tuple(SliceStatus)


def slice_status(*, has_consensus: bool, has_mine: bool, reviewed: bool, has_model: bool) -> SliceStatus:
    """The status from what exists: the consensus wins, then my review, then the model's result."""
    if has_consensus:
        return SliceStatus.CONSENSUS
    if has_mine:
        return SliceStatus.REVIEWED if reviewed else SliceStatus.IN_REVIEW
    return SliceStatus.PRE_ANNOTATED if has_model else SliceStatus.UNREAD

"""What the review shows on a slice: in each overlay mode, the reader's own boxes (editable only where they are
shown) and beside them the model's result, the consensus (unless blinding hides it) or the other readers' boxes; and
the notices over the image (the study cannot be written, the model found too few vertebrae)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from core.annotations.model import SliceAnnotation, Vertebra
from core.errors import VertebraReviewError
from core.review.box_edits import repeated_by_reader
from core.review.confidence import ModelCall
from core.review.session import ReviewSession
from core.review.status import FINISHED_STATUSES
from core.review.summary import SliceSummary
from core.study.slice_key import SliceKey, slice_key
from desktop.dialogs.messages import error_text
from desktop.panels.model_panel import OVERLAY_BOTH, OVERLAY_CONSENSUS, OVERLAY_MINE, OVERLAY_MODEL, OVERLAY_READERS
from desktop.review.reading_view import ReadingView
from desktop.viewer.reader_box_item import DrawnVersion

READ_ONLY_NOTICE = ("This study folder cannot be written ({why}). Your edits are kept in memory and in the "
                    "recovery journal; use File › Export to save them elsewhere.")


def shows_model(mode: str) -> bool:
    return mode in (OVERLAY_BOTH, OVERLAY_MODEL)


@dataclass(frozen=True)
class SliceOverlay:
    mine: tuple[Vertebra, ...] = ()  # the reader's boxes shown; editable where they are shown
    others: tuple[Vertebra, ...] = ()  # the model's or the consensus's
    from_model: bool = True  # the others are the model's
    editable: bool = False
    readers: list[DrawnVersion] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # with the model's, the consensus's or the readers' files
    call: ModelCall | None = None  # what the model's result says for judging its unsure boxes

    @property
    def model_boxes(self) -> tuple[Vertebra, ...]:
        return self.others if self.from_model else ()


def slice_overlay(mode: str, session: ReviewSession, reading: ReadingView, key: SliceKey,
                  mine: SliceAnnotation | None) -> SliceOverlay:
    """The boxes ``mode`` shows on ``key``, with ``mine`` the reader's own annotation of it (None: not editable)."""
    others: tuple[Vertebra, ...] = ()
    call: ModelCall | None = None
    from_model = mode not in (OVERLAY_CONSENSUS, OVERLAY_READERS)
    readers, problems = [], []
    try:
        if shows_model(mode):
            result = session.model_result(key)
            others = result.vertebrae if result is not None else ()
            call = ModelCall.of(result)
        elif mode == OVERLAY_CONSENSUS and not reading.blinded(slice_key(key).case):
            result = session.consensus(key)
            others = result.vertebrae if result is not None else ()
    except VertebraReviewError as error:
        problems.append(f"{'model result' if from_model else 'consensus'} not shown: {error_text(error)}")
    if mode == OVERLAY_READERS:
        readers, unreadable = reading.other_readers(key)
        problems += unreadable
    show_mine = mode in (OVERLAY_BOTH, OVERLAY_MINE, OVERLAY_READERS) and mine is not None
    if call is None and show_mine:  # the reader's copies of the model's boxes: the active model's result's
        try:
            call = ModelCall.of(session.model_result(key))
        except VertebraReviewError:
            pass  # said where the model's boxes are shown
    return SliceOverlay(mine.vertebrae if show_mine else (), others, from_model, show_mine, readers, problems, call)


def redraws_alone(before: SliceAnnotation | None, after: SliceAnnotation, model_shown: Sequence[Vertebra],
                  unlabelled: Collection[int]) -> bool:
    """Whether an edit that changed some of the reader's boxes (not their number) leaves the rest of the picture as
    it was: the slice's reviewed mark is the same (the model's unsure marks stay) and the same model boxes are
    repeated by the reader's (they keep or lose their own label)."""
    return before is not None and before.reviewed == after.reviewed and (
        not model_shown or repeated_by_reader(after.vertebrae, model_shown) == set(unlabelled))


def read_only_notice(session: ReviewSession | None) -> str | None:
    return READ_ONLY_NOTICE.format(why=session.save_problem) if session is not None and session.read_only else None


def shortfall_notice(summary: SliceSummary | None, mode: str, *, demo: bool) -> str | None:
    """Said over the image when the model found no or too few vertebrae on the slice, while ``mode`` shows its boxes
    and the reader has not finished the slice (``summary``'s status)."""
    unfinished = summary is not None and shows_model(mode) and summary.status not in FINISHED_STATUSES
    shortfall = summary.shortfall if unfinished else None
    return shortfall.message(demo=demo) if shortfall else None

"""Which annotation of a slice counts for a purpose: the consensus, one reader's file, or the best there is (the
consensus, else any reviewed reader file), and the slices that have none of these yet."""

from __future__ import annotations

from core.annotations.model import SliceAnnotation
from core.errors import VertebraReviewError
from core.study.layout import Study
from core.study.slice_key import SliceKey

#: ``source`` values besides a reader id.
CONSENSUS, BEST = "consensus", "best"


def annotation_from(study: Study, case: str, slice_id: str, source: str) -> SliceAnnotation | None:
    """The consensus (``consensus``), a reader's file (``source`` = reader id), or the consensus else the first
    reviewed reader file (``best``); None when there is none. A file that cannot be read raises its error."""
    if source == CONSENSUS:
        return study.load_annotation(case, slice_id)
    if source == BEST:
        found = study.load_annotation(case, slice_id)
        if found is not None:
            return found
        for reader in study.readers():
            found = study.load_annotation(case, slice_id, reader=reader)
            if found is not None and found.reviewed:
                return found
        return None
    return study.load_annotation(case, slice_id, reader=source)


def unreviewed_slices(study: Study) -> list[SliceKey]:
    """Slices with neither a consensus nor a reviewed reader annotation (or whose files cannot be read): those whose
    predictions a new model refreshes."""
    found = []
    for key in study.all_slices():
        try:
            done = annotation_from(study, *key, BEST) is not None
        except VertebraReviewError:
            done = False
        if not done:
            found.append(key)
    return found

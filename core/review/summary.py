"""What the case list shows and filters on, per slice: status, findings, low confidence, reader disagreement.

The *current result* of a slice is the reader's own annotation when there is one, else the model's, else the
consensus. Disagreement is a quick per-slice check (the full agreement statistics live in ``core.consensus``):
two readers disagree when their vertebra counts differ, or when boxes paired by the paper's hit rule
(:func:`~core.annotations.geometry.pair_by_iom`, IoM > 0.5) carry different labels, or a box finds no partner.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.annotations.geometry import pair_by_iom
from core.annotations.model import NORMAL, SliceAnnotation, Vertebra
from core.errors import VertebraReviewError
from core.progress import Progress, ProgressGenerator
from core.review.status import SliceStatus, slice_status
from core.study.layout import Study

SliceKey = tuple[str, str]
#: A model result is low confidence when a class probability lies in this band, or the detector score is below
#: :data:`LOW_SCORE` (detections start at :data:`~core.annotations.geometry.DETECTION_THRESHOLD`, 0.75, so 0.75-0.9
#: is borderline).
UNSURE_BAND = (0.3, 0.7)
LOW_SCORE = 0.9


@dataclass(frozen=True)
class SliceSummary:
    status: SliceStatus = SliceStatus.UNREAD
    diseases: frozenset[str] = frozenset()  # codes in the current result; NORMAL when it has only normal boxes
    boxes: int = 0
    low_confidence: bool = False
    disagreement: bool = False
    problem: str | None = None  # why a file of this slice could not be read


def is_low_confidence(vertebra: Vertebra) -> bool:
    """A model box the reader should look at twice: a borderline detector score or an unsure class."""
    if vertebra.score is not None and vertebra.score < LOW_SCORE:
        return True
    low, high = UNSURE_BAND
    return any(low <= p <= high for p in (vertebra.probabilities or {}).values())


def findings(annotation: SliceAnnotation | None) -> frozenset[str]:
    if annotation is None:
        return frozenset()
    codes = {d.value for v in annotation.vertebrae for d in v.diseases}
    if not codes and any(v.diagnosed for v in annotation.vertebrae):
        codes.add(NORMAL)
    return frozenset(codes)


def _pair_disagrees(a: SliceAnnotation, b: SliceAnnotation) -> bool:
    if len(a.vertebrae) != len(b.vertebrae):
        return True
    pairs = pair_by_iom([v.box for v in a.vertebrae], [v.box for v in b.vertebrae])
    if len(pairs) < len(a.vertebrae):  # a box without a partner
        return True
    return any(a.vertebrae[i].label != b.vertebrae[j].label for i, j in pairs)


def readers_disagree(annotations: Sequence[SliceAnnotation]) -> bool:
    """True when any two of the readers' annotations of one slice differ (count, unmatched box, or label)."""
    return any(
        _pair_disagrees(annotations[i], annotations[j])
        for i in range(len(annotations))
        for j in range(i + 1, len(annotations))
    )


def _load(study: Study, key: SliceKey, problems: list[str], **which: str | None) -> SliceAnnotation | None:
    try:
        return study.load_annotation(*key, **which)
    except VertebraReviewError as exc:
        problems.append(str(exc))
        return None


def summarize(
    study: Study, key: SliceKey, reader: str, model_id: str | None, *, mine: SliceAnnotation | None = None
) -> SliceSummary:
    """The summary of one slice from its files; ``mine`` stands in for the reader's file (unsaved edits)."""
    problems: list[str] = []
    if mine is None:
        mine = _load(study, key, problems, reader=reader)
    model = _load(study, key, problems, model=model_id) if model_id else None
    has_consensus = study.consensus_path(*key).is_file()
    consensus = _load(study, key, problems) if has_consensus and mine is None and model is None else None
    others = [a for r in study.readers() if r != reader and (a := _load(study, key, problems, reader=r)) is not None]
    readers = [a for a in (mine, *others) if a is not None]
    current = mine or model or consensus
    status = slice_status(
        has_consensus=has_consensus,
        has_mine=mine is not None,
        reviewed=bool(mine and mine.reviewed),
        has_model=model is not None,
    )
    return SliceSummary(
        status=status,
        diseases=findings(current),
        boxes=len(current.vertebrae) if current else 0,
        low_confidence=bool(model and any(is_low_confidence(v) for v in model.vertebrae)),
        disagreement=readers_disagree(readers),
        problem="; ".join(problems) or None,
    )


def quick_status(study: Study, key: SliceKey, reader: str, model_id: str | None) -> SliceStatus:
    """The status from file existence alone (no parsing): fast enough for the first view of a large study."""
    has_mine = study.reader_path(reader, *key).is_file()
    return slice_status(
        has_consensus=study.consensus_path(*key).is_file(),
        has_mine=has_mine,
        reviewed=False,
        has_model=bool(model_id) and study.prediction_path(model_id, *key).is_file(),
    )


def scan_study(
    study: Study, reader: str, model_id: str | None, keys: Sequence[SliceKey] | None = None
) -> ProgressGenerator[dict[SliceKey, SliceSummary]]:
    """Summaries of every slice (or ``keys``), yielding progress every few slices; a bad file marks its slice."""
    keys = list(study.all_slices() if keys is None else keys)
    result: dict[SliceKey, SliceSummary] = {}
    for number, key in enumerate(keys):
        if number % 16 == 0:
            yield Progress("scan", number, len(keys), f"{key[0]}/{key[1]}")
        result[key] = summarize(study, key, reader, model_id)
    yield Progress("scan", len(keys), len(keys), "done")
    return result

"""What the case list shows and filters on, per slice: status, findings, low confidence
(:mod:`core.review.confidence`), reader disagreement, and whether the model's result falls short
(:mod:`core.review.shortfall`).

The *current result* of a slice is the reader's own annotation when there is one, else the model's, else the
consensus. A slice's disagreement is an *open disagreement* of :mod:`core.consensus.counts` (the one definition the
consensus mode and ``vertebra-review consensus`` count too): the study's readers disagree on a vertebra there and the
consensus has not decided it. Its status is "consensus" only once the consensus is final; before, it keeps the
reader's own status and carries the consensus's progress (decided of vertebrae).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache

from core.annotations.model import NORMAL, SliceAnnotation
from core.consensus.check import study_readers
from core.consensus.counts import progress_from_files
from core.errors import VertebraReviewError
from core.progress import Progress, ProgressGenerator
from core.review.confidence import ModelCall, is_unsure
from core.review.shortfall import ModelShortfall, height_matters, judge
from core.review.status import FINISHED_STATUSES, SliceStatus, slice_status, with_shortfall
from core.study.layout import Study
from core.study.slice_key import SliceKey, slice_key


@dataclass(frozen=True)
class SliceSummary:
    status: SliceStatus = SliceStatus.UNREAD
    diseases: frozenset[str] = frozenset()  # codes in the current result; NORMAL when it has only normal boxes
    boxes: int = 0
    low_confidence: bool = False  # an unsure model box on a slice the reader has not finished (core.review.confidence)
    disagreement: bool = False  # an open disagreement of the readers (core.consensus.counts)
    consensus_progress: tuple[int, int] | None = None  # (decided, vertebrae) of a consensus that is not final yet
    blinded: bool = False  # the reader may not see the other readers or the consensus of the case yet
    problem: str | None = None  # why a file of this slice could not be read
    model_boxes: int | None = None  # boxes in the model's result; None when the model has not run on the slice
    height_mm: float | None = None  # the slice's height, when its pixel spacing is known and it matters
    shortfall: ModelShortfall | None = None  # the model found none, or clearly too few (whatever the status)


def findings(annotation: SliceAnnotation | None) -> frozenset[str]:
    if annotation is None:
        return frozenset()
    codes = {d.value for v in annotation.vertebrae for d in v.diseases}
    if not codes and any(v.diagnosed for v in annotation.vertebrae):
        codes.add(NORMAL)
    return frozenset(codes)


def readers_disagree(annotations: Sequence[SliceAnnotation]) -> bool:
    """True when the readers' annotations of one slice (no consensus yet) hold a disagreement: a vertebra with
    different disease sets, drawn by some only, or drawn differently (:mod:`core.consensus.counts`)."""
    progress = progress_from_files(SliceKey("", ""), {str(i): a for i, a in enumerate(annotations)}, None)
    return progress is not None and progress.open > 0


#: Reads one annotation file as :meth:`Study.load_annotation` does (the review session's answers from memory).
Loader = Callable[..., SliceAnnotation | None]


def _load(load: Loader, key: SliceKey, problems: list[str], **which: str | None) -> SliceAnnotation | None:
    try:
        return load(*key, **which)
    except VertebraReviewError as exc:
        problems.append(str(exc))
        return None


RowSpacing = Callable[[], float | None]


def row_spacing(study: Study, case: str) -> float | None:
    """The row spacing (mm) of a case's slices, read from its first slice (the slices of a case are slabs of one
    volume); None when unknown or unreadable."""
    slices = study.slices(case)
    try:
        image = study.read_image(case, slices[0]) if slices else None
    except VertebraReviewError:
        return None
    return image.spacing_mm[0] if image is not None and image.spacing_mm else None


def _height_mm(model: SliceAnnotation | None, row_mm: RowSpacing | None) -> float | None:
    if model is None or row_mm is None or not height_matters(len(model.vertebrae)):
        return None
    spacing = row_mm()
    return model.image_height * spacing if spacing else None


def summarize(
    study: Study, key: SliceKey, reader: str, model_id: str | None, *, mine: SliceAnnotation | None = None,
    row_mm: RowSpacing | None = None, load: Loader | None = None,
) -> SliceSummary:
    """The summary of one slice from its files; ``mine`` stands in for the reader's file (unsaved edits).
    ``row_mm()`` gives the case's row spacing, asked only when the slice's height could matter; the model's result is
    judged on this slice alone (:func:`judge_cases` adds the other slices of the case)."""
    problems: list[str] = []
    load = load or study.load_annotation
    if mine is None:
        mine = _load(load, key, problems, reader=reader)
    model = _load(load, key, problems, model=model_id) if model_id else None
    has_consensus = study.consensus_path(*key).is_file()
    consensus = _load(load, key, problems) if has_consensus else None
    files = {r: a for r in study.readers() if r != reader and (a := _load(load, key, problems, reader=r)) is not None}
    files[reader] = mine
    compared = {r: files[r] for r in study_readers(study).readers if files.get(r) is not None}
    agreed = progress_from_files(key, compared, consensus, unreadable=has_consensus and consensus is None)
    current = mine or model or consensus
    model_boxes = len(model.vertebrae) if model is not None else None
    height_mm = _height_mm(model, row_mm)
    shortfall = judge(model_boxes, height_mm=height_mm)
    status = slice_status(
        has_consensus=agreed.final if agreed is not None else has_consensus,
        has_mine=mine is not None,
        reviewed=bool(mine and mine.reviewed),
        has_model=model is not None,
        shortfall=shortfall,
    )
    return SliceSummary(
        status=status,
        diseases=findings(current),
        boxes=len(current.vertebrae) if current else 0,
        low_confidence=bool(model) and status not in FINISHED_STATUSES and any(
            is_unsure(v, ModelCall.of(model)) for v in model.vertebrae),
        disagreement=agreed is not None and agreed.open > 0,
        consensus_progress=(agreed.decided, agreed.vertebrae) if agreed is not None and agreed.in_progress else None,
        problem="; ".join(problems) or None,
        model_boxes=model_boxes,
        height_mm=height_mm,
        shortfall=shortfall,
    )


def judge_cases(summaries: Mapping[SliceKey, SliceSummary]) -> dict[SliceKey, SliceSummary]:
    """``summaries`` with each model result judged against the model's results on the other slices of its case
    among ``summaries`` (pass whole cases), and the statuses that follow."""
    counts: dict[str, dict[SliceKey, int]] = {}
    for key, summary in summaries.items():
        if summary.model_boxes is not None:
            counts.setdefault(slice_key(key).case, {})[key] = summary.model_boxes
    judged = {}
    for key, summary in summaries.items():
        others = [n for other, n in counts.get(slice_key(key).case, {}).items() if other != key]
        shortfall = judge(summary.model_boxes, others=others, height_mm=summary.height_mm)
        judged[key] = replace(summary, shortfall=shortfall, status=with_shortfall(summary.status, shortfall))
    return judged


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
    """Summaries of every slice (or ``keys``), yielding progress every few slices; a bad file marks its slice.
    Model results are judged against the other slices of their case among ``keys``."""
    keys = [slice_key(key) for key in (study.all_slices() if keys is None else keys)]
    spacing = cache(lambda case: row_spacing(study, case))
    result: dict[SliceKey, SliceSummary] = {}
    for number, key in enumerate(keys):
        if number % 16 == 0:
            yield Progress("scan", number, len(keys), f"{slice_key(key).text}")
        result[key] = summarize(study, key, reader, model_id, row_mm=lambda case=key.case: spacing(case))
    yield Progress("scan", len(keys), len(keys), "done")
    return judge_cases(result)

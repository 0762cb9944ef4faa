"""Independent reading: each reader marks the cases they have finished, and sees only their own annotations of a
case until they have marked it done, while the study's ``blinding`` setting is on (the default).

The marks of a reader live in ``readers/<reader>/done.json``, beside their annotation folders, written atomically::

    {"format": "vertebra-review-reading", "version": 1, "reader": "r1",
     "cases": {"case-0001": {"done_at": "2024-05-01T10:12:00+00:00"}}}

A viewer of ``None`` is the consensus coordinator (or a study without reader identities), who sees everything.
Model predictions are never blinded: they are the pre-annotation every reader starts from.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.annotations.model import SliceAnnotation
from core.errors import ConsensusError
from core.fileio import atomic_write_json
from core.imaging.limits import MAX_ANNOTATION_BYTES
from core.study.layout import Study, check_id

DONE_FILE = "done.json"
DONE_FORMAT = "vertebra-review-reading"
DONE_VERSION = 1

Clock = Callable[[], datetime]


def now_utc() -> datetime:
    return datetime.now(UTC)


def timestamp(clock: Clock = now_utc) -> str:
    return clock().astimezone(UTC).isoformat(timespec="seconds")


def done_path(study: Study, reader: str) -> Path:
    return study.root / "readers" / check_id(reader, "reader") / DONE_FILE


def done_cases(study: Study, reader: str) -> dict[str, str]:
    """Case → when the reader marked it done. Raises :class:`ConsensusError` for an unreadable marks file."""
    path = done_path(study, reader)
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConsensusError(f"cannot read the reader's done marks: {exc}", path) from exc
    cases = data.get("cases") if isinstance(data, dict) else None
    if not isinstance(data, dict) or data.get("format") != DONE_FORMAT or not isinstance(cases, dict):
        raise ConsensusError(f'not a done-marks file (no "format": "{DONE_FORMAT}" with "cases")', path)
    if not isinstance(data.get("version"), int) or data["version"] > DONE_VERSION:
        raise ConsensusError(f"done-marks version {data.get('version')!r} is newer than this app supports", path)
    result = {}
    for case, mark in cases.items():
        if not isinstance(mark, dict) or not isinstance(mark.get("done_at"), str):
            raise ConsensusError(f"the mark of case {case!r} has no 'done_at' time", path)
        result[case] = mark["done_at"]
    return result


def is_case_done(study: Study, reader: str, case: str) -> bool:
    return case in done_cases(study, reader)


def unannotated_slices(study: Study, reader: str, case: str) -> list[str]:
    return [s for s in study.slices(case) if not study.reader_path(reader, case, s).is_file()]


def mark_case_done(
    study: Study,
    reader: str,
    case: str,
    *,
    done: bool = True,
    allow_incomplete: bool = False,
    clock: Clock = now_utc,
) -> Path:
    """Mark (or with ``done=False`` unmark) the reader's case as done. A case with slices the reader has no file for
    is refused unless ``allow_incomplete``: the consistency check would count those slices as missing."""
    check_id(reader, "reader")
    if case not in study.cases():
        raise ConsensusError(f"there is no case {case!r} in the study", study.root)
    if done and not allow_incomplete:
        missing = unannotated_slices(study, reader, case)
        if missing:
            shown = ", ".join(missing[:5]) + (", …" if len(missing) > 5 else "")
            raise ConsensusError(
                f"{reader} has no annotation for {len(missing)} of {len(study.slices(case))} slices of {case} "
                f"({shown}); annotate them (an empty slice is saved as reviewed) or mark the case done anyway"
            )
    cases = {c: {"done_at": t} for c, t in done_cases(study, reader).items()}
    if done:
        cases[case] = {"done_at": cases.get(case, {}).get("done_at") or timestamp(clock)}
    else:
        cases.pop(case, None)
    payload = {"format": DONE_FORMAT, "version": DONE_VERSION, "reader": reader, "cases": dict(sorted(cases.items()))}
    return atomic_write_json(done_path(study, reader), payload)


def set_blinding(study: Study, on: bool) -> None:
    """Turn blinding on or off for the whole study (saved in ``study.json``)."""
    study.update_settings(lambda settings: setattr(settings, "blinding", bool(on)))


# -- what a reader may see --------------------------------------------------------------------------------------------
def may_see(study: Study, viewer: str | None, owner: str | None, case: str) -> bool:
    """Whether ``viewer`` may see ``owner``'s annotations of ``case`` (``owner`` None: the consensus)."""
    if viewer is None or not study.settings.blinding or owner == viewer:
        return True
    return is_case_done(study, viewer, case)


def visible_readers(study: Study, viewer: str | None, case: str) -> list[str]:
    """The readers whose annotations of ``case`` the viewer may see (always including the viewer's own)."""
    if viewer is not None and study.settings.blinding and not is_case_done(study, viewer, case):
        return [viewer]
    readers = study.readers()
    return readers if viewer is None or viewer in readers else [viewer, *readers]


def load_visible(
    study: Study,
    viewer: str | None,
    case: str,
    slice_id: str,
    *,
    owner: str | None,
    image_size: tuple[int, int] | None = None,
) -> SliceAnnotation | None:
    """``owner``'s annotation (or the consensus) as the viewer may see it; raises when blinding hides it."""
    if not may_see(study, viewer, owner, case):
        whose = "the consensus" if owner is None else f"{owner}'s annotations"
        raise ConsensusError(
            f"blinded: {viewer} cannot see {whose} of {case} before marking the case done "
            "(or turn blinding off for the study)"
        )
    return study.load_annotation(case, slice_id, reader=owner, image_size=image_size)


# -- progress ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CaseProgress:
    """One reader on one case: slices with a file of theirs, of those marked reviewed, and the done mark."""

    reader: str
    case: str
    slices: int
    annotated: int
    reviewed: int
    done_at: str | None

    @property
    def done(self) -> bool:
        return self.done_at is not None

    def to_json(self) -> dict[str, Any]:
        return {"reader": self.reader, "case": self.case, "slices": self.slices, "annotated": self.annotated,
                "reviewed": self.reviewed, "done": self.done, "done_at": self.done_at}


def _is_reviewed(path: Path) -> bool:
    """The file's ``reviewed`` flag, read without validating the rest (a broken file counts as not reviewed)."""
    try:
        if path.stat().st_size > MAX_ANNOTATION_BYTES:  # not read whole: a broken file counts as not reviewed
            return False
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return False
    return isinstance(data, dict) and data.get("reviewed") is True


def reading_progress(study: Study, readers: Iterable[str] | None = None) -> list[CaseProgress]:
    """Progress of every reader on every case of the study, reader by reader."""
    chosen = list(readers) if readers is not None else study.readers()
    cases = {case: study.slices(case) for case in study.cases()}
    result = []
    for reader in chosen:
        marks = done_cases(study, reader)
        for case, slices in cases.items():
            files = [study.reader_path(reader, case, s) for s in slices]
            present = [p for p in files if p.is_file()]
            reviewed = sum(_is_reviewed(p) for p in present)
            result.append(CaseProgress(reader, case, len(slices), len(present), reviewed, marks.get(case)))
    return result


def progress_by_reader(progress: Sequence[CaseProgress]) -> dict[str, dict[str, int]]:
    """Totals per reader: cases, cases done, slices, annotated and reviewed slices."""
    totals: dict[str, dict[str, int]] = {}
    for item in progress:
        row = totals.setdefault(
            item.reader, {"cases": 0, "cases_done": 0, "slices": 0, "annotated": 0, "reviewed": 0}
        )
        row["cases"] += 1
        row["cases_done"] += item.done
        row["slices"] += item.slices
        row["annotated"] += item.annotated
        row["reviewed"] += item.reviewed
    return totals


def cases_not_done(study: Study, readers: Sequence[str]) -> list[tuple[str, str]]:
    """(reader, case) pairs where the reader has not marked the case done."""
    result = []
    for reader in readers:
        marks = done_cases(study, reader)
        result.extend((reader, case) for case in study.cases() if case not in marks)
    return result

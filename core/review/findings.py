"""A CSV of findings: one row per vertebra, for spreadsheets and statistics.

Rows go slice by slice and, within a slice, down the spine (:func:`spine_rows`); the vertebra number counts from
the top of the spine. Columns: case, slice, reader (or model), reviewed, vertebra number, level, label, one 0/1
column per disease,
the Genant grade (0-3, empty when unknown), the model's probabilities (empty when a reader drew the box), detector
score, source, and the box in slice pixels.
Case and slice names are the study's anonymous ids; no patient data is written.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from pathlib import Path

from core.annotations.model import CLASS_CODES, DISEASES, LEVELS, SliceAnnotation, Vertebra
from core.fileio import atomic_write_text
from core.review.box_edits import spine_sequence
from core.study.slice_key import SliceKey

COLUMNS: tuple[str, ...] = (
    "case", "slice", "reader", "reviewed", "vertebra", "level", "label",
    *(d.value for d in DISEASES), "genant",
    *(f"p_{code}" for code in CLASS_CODES),
    "score", "source", "x1", "y1", "x2", "y2",
)


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def spine_rows(vertebrae: Sequence[Vertebra]) -> list[int]:
    """Indices of ``vertebrae`` from the top of the spine to the bottom: by level (C1 … S1) when every box has one,
    else by place along the spine, as Tab goes (:func:`~core.review.box_edits.spine_sequence`), which also breaks
    ties between equal levels."""
    along = spine_sequence(vertebrae)
    if not all(v.level in LEVELS for v in vertebrae):
        return along
    place = {index: rank for rank, index in enumerate(along)}
    return sorted(along, key=lambda i: (LEVELS.index(vertebrae[i].level), place[i]))


def findings_rows(items: Iterable[tuple[SliceKey, SliceAnnotation]], *, who: str | None = None) -> list[list[str]]:
    """The rows of :data:`COLUMNS`; ``who`` fills the reader column (default: the file's reader, ``model:<id>``,
    or ``consensus``)."""
    rows = []
    for (case, slice_id), annotation in items:
        source = who or annotation.reader or (f"model:{annotation.model}" if annotation.model else "consensus")
        for number, index in enumerate(spine_rows(annotation.vertebrae), start=1):
            vertebra = annotation.vertebrae[index]
            probabilities = vertebra.probabilities or {}
            box = vertebra.box
            rows.append([
                case, slice_id, source, "1" if annotation.reviewed else "0", str(number), vertebra.level or "",
                vertebra.label,
                *("1" if d in vertebra.diseases else "0" for d in DISEASES),
                "" if vertebra.genant is None else str(vertebra.genant),
                *(_number(probabilities.get(code)) for code in CLASS_CODES),
                _number(vertebra.score), vertebra.source,
                *(f"{v:.1f}" for v in (box.x1, box.y1, box.x2, box.y2)),
            ])
    return rows


def findings_csv(items: Iterable[tuple[SliceKey, SliceAnnotation]], *, who: str | None = None) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(findings_rows(items, who=who))
    return buffer.getvalue()


def write_findings_csv(path: str | Path, items: Iterable[tuple[SliceKey, SliceAnnotation]], *,
                       who: str | None = None) -> Path:
    """Write the CSV atomically (``who``: see :func:`findings_rows`). Raises :class:`~core.errors.FileWriteError`."""
    return atomic_write_text(path, findings_csv(items, who=who))

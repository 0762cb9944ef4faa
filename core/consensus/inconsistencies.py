"""The consistency check's lists: one row per disagreement (a vertebra group), and one row per inconsistent
annotation (per slice, per reader and per class).

Who is inconsistent in a group:

- **presence**: when more than half of the readers drew the box, each reader who did not gets a ``no box`` row (the
  class is the label the others gave); when fewer than half drew it, each reader who did gets an ``extra box`` row
  (the class is their label); on a tie both.
- **label**: for each disease flag on which the readers who drew the box are not unanimous, each reader whose flag
  differs from the majority's gets a ``label`` row for that class; when there is no majority on the flag (a tie),
  every one of them does.
- **box**: when the boxes differ (lowest IoU below the tolerance), each reader whose box has an IoU below the
  tolerance with the group's median box gets a ``box`` row (every reader who drew one when none is that far off).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from core.annotations.geometry import iou
from core.annotations.model import DISEASES, disease_label
from core.consensus.check import ConsistencyCheck, SliceMatch
from core.consensus.matching import Agreement, VertebraGroup

DISAGREEMENT_COLUMNS = ("case", "slice", "vertebra", "level", "status", "kinds", "missing_for", "flags_differ",
                        "min_iou", "majority", "decision", "x1", "y1", "x2", "y2")
INCONSISTENCY_COLUMNS = ("case", "slice", "vertebra", "reader", "class", "kind", "reader_value", "majority_value",
                         "status")

GroupKey = tuple[str, str, int]


def _majority_text(group: VertebraGroup) -> str:
    call = group.majority
    if call is None:
        return ""
    return disease_label(call.diseases) if call.present else "no vertebra"


def disagreement_rows(check: ConsistencyCheck, decisions: Mapping[GroupKey, str] | None = None) -> list[dict[str, Any]]:
    """One row per disagreement, with each reader's label in a column ``label_<reader>``."""
    decisions = decisions or {}
    rows = []
    for item, group in check.disagreements():
        level = next((v.level for v in group.versions.values() if v is not None and v.level), None)
        row: dict[str, Any] = {
            "case": item.case,
            "slice": item.slice_id,
            "vertebra": group.index,
            "level": level or "",
            "status": group.status.value,
            "kinds": "+".join(group.kinds),
            "missing_for": " ".join(group.missing_for),
            "flags_differ": " ".join(code for code, a in group.flags.items() if a is not Agreement.UNANIMOUS),
            "min_iou": "" if group.min_iou is None else round(group.min_iou, 3),
            "majority": _majority_text(group),
            "decision": decisions.get((item.case, item.slice_id, group.index), ""),
        }
        row.update(zip(("x1", "y1", "x2", "y2"), (round(c, 1) for c in group.box.as_list()), strict=True))
        for reader in check.readers:
            labels = group.labels()
            row[f"label_{reader}"] = labels.get(reader, "(no file)")
        rows.append(row)
    return rows


def disagreement_columns(check: ConsistencyCheck) -> list[str]:
    return [*DISAGREEMENT_COLUMNS[:6], *(f"label_{r}" for r in check.readers), *DISAGREEMENT_COLUMNS[6:]]


def _row(item: SliceMatch, group: VertebraGroup, reader: str, code: str, kind: str, mine: str, theirs: str
         ) -> dict[str, Any]:
    return {"case": item.case, "slice": item.slice_id, "vertebra": group.index, "reader": reader, "class": code,
            "kind": kind, "reader_value": mine, "majority_value": theirs, "status": group.status.value}


def _presence_rows(item: SliceMatch, group: VertebraGroup) -> list[dict[str, Any]]:
    drawn, missing = group.drawn_by, group.missing_for
    if not missing:
        return []
    rows = []
    others = Counter(disease_label(group.versions[r].diseases) for r in drawn).most_common(1)[0][0]
    if len(drawn) * 2 >= len(group.versions):
        rows += [_row(item, group, r, others, "no box", "no box", "box") for r in missing]
    if len(drawn) * 2 <= len(group.versions):
        rows += [_row(item, group, r, disease_label(group.versions[r].diseases), "extra box", "box", "no box")
                 for r in drawn]
    return rows


def _label_rows(item: SliceMatch, group: VertebraGroup) -> list[dict[str, Any]]:
    rows = []
    drawn = {r: group.versions[r] for r in group.drawn_by}
    for disease in DISEASES:
        if group.flags[disease.value] is Agreement.UNANIMOUS:
            continue
        votes = {r: disease in v.diseases for r, v in drawn.items()}
        counts = Counter(votes.values())
        majority = True if counts[True] * 2 > len(votes) else False if counts[False] * 2 > len(votes) else None
        theirs = "tie" if majority is None else ("yes" if majority else "no")
        for reader, vote in votes.items():
            if majority is None or vote != majority:
                rows.append(_row(item, group, reader, disease.value, "label", "yes" if vote else "no", theirs))
    return rows


def _box_rows(item: SliceMatch, group: VertebraGroup, tolerance: float) -> list[dict[str, Any]]:
    if not group.boxes_differ:
        return []
    closeness = {r: iou(group.versions[r].box, group.box) for r in group.drawn_by}
    off = [r for r, value in closeness.items() if value < tolerance] or list(closeness)
    return [_row(item, group, r, disease_label(group.versions[r].diseases), "box", f"IoU {closeness[r]:.2f}",
                 "median box") for r in off]


def inconsistency_rows(check: ConsistencyCheck) -> list[dict[str, Any]]:
    """Every inconsistent annotation, per slice, per reader and per class."""
    rows = []
    for item, group in check.disagreements():
        rows += _presence_rows(item, group)
        rows += _label_rows(item, group)
        rows += _box_rows(item, group, check.settings.box_tolerance)
    return rows


def counts_by_reader_and_class(rows: list[dict[str, Any]], readers: tuple[str, ...]) -> dict[str, dict[str, int]]:
    """Inconsistent annotations per reader (rows) and per class or kind (columns)."""
    table: dict[str, dict[str, int]] = {r: {} for r in readers}
    for row in rows:
        column = row["class"] if row["kind"] == "label" else row["kind"]
        cells = table.setdefault(row["reader"], {})
        cells[column] = cells.get(column, 0) + 1
    return table

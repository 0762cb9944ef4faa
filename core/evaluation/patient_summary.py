"""The per-patient summary the paper proposed but did not build (``vertebra-review report``).

For each case (a folder of one examination's predicted slices): which vertebra has which disease, with the highest
probability across its slices, and an alert list. A vertebra is followed through the parallel sagittal slices of the
case by pairing its boxes with those of the slice with the most boxes by the paper's hit rule
(:func:`~core.annotations.geometry.pair_by_iom`, IoM > 0.5); it is named by its level when the model gave one (the
majority over its slices), else by its place from the top. A vertebra's Genant grade (from an imported grades
table) is the highest grade given on any of its slices, or None when none is.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.annotations.geometry import pair_by_iom
from core.annotations.labelme_io import read_labelme
from core.annotations.labelme_paths import labelme_files, no_labelme_files
from core.annotations.model import DISEASE_NAMES, DISEASES, LEVELS, SliceAnnotation, highest_genant
from core.errors import FileWriteError, VertebraReviewError
from core.evaluation.html import html_page, table
from core.fileio import atomic_write_together, json_bytes

SUMMARY_JSON = "summary.json"


@dataclass
class VertebraTrack:
    """One vertebra through the slices of a case."""

    boxes: list[list[float]] = field(default_factory=list)
    levels: list[str | None] = field(default_factory=list)
    slices: list[str] = field(default_factory=list)
    max_probability: dict[str, float] = field(default_factory=dict)
    called: dict[str, list[str]] = field(default_factory=dict)  # disease -> slices where it was called
    genant: int | None = None  # the highest Genant grade over the slices

    @property
    def level(self) -> str | None:
        known = [lv for lv in self.levels if lv]
        return max(set(known), key=known.count) if known else None

    @property
    def centre_y(self) -> float:
        return float(np.mean([(b[1] + b[3]) / 2 for b in self.boxes]))


def _tracks(slices: list[tuple[str, SliceAnnotation]]) -> list[VertebraTrack]:
    _, reference = max(slices, key=lambda s: len(s[1].vertebrae))
    tracks = [VertebraTrack() for _ in reference.vertebrae]
    anchors = np.array([v.box.as_list() for v in reference.vertebrae]).reshape(-1, 4)
    for name, annotation in slices:
        boxes = np.array([v.box.as_list() for v in annotation.vertebrae]).reshape(-1, 4)
        assigned = dict(pair_by_iom(boxes, anchors))
        for i, vertebra in enumerate(annotation.vertebrae):
            if i not in assigned:
                tracks.append(VertebraTrack())
                assigned[i] = len(tracks) - 1
            track = tracks[assigned[i]]
            track.boxes.append(vertebra.box.as_list())
            track.levels.append(vertebra.level)
            track.slices.append(name)
            track.genant = highest_genant((track.genant, vertebra.genant))
            for code, p in (vertebra.probabilities or {}).items():
                track.max_probability[code] = max(track.max_probability.get(code, 0.0), float(p))
            for disease in vertebra.diseases:
                track.called.setdefault(disease.value, []).append(name)
    return sorted((t for t in tracks if t.boxes), key=lambda t: t.centre_y)


def case_summary(case: str, slices: list[tuple[str, SliceAnnotation]]) -> dict[str, Any]:
    vertebrae, alerts = [], []
    for position, track in enumerate(_tracks(slices), start=1):
        name = track.level or f"#{position} from the top"
        entry = {"vertebra": name, "level": track.level, "genant": track.genant, "slices": len(track.slices),
                 "diseases": {code: {"max_probability": track.max_probability.get(code), "called_on": found}
                              for code, found in track.called.items()},
                 "max_probability": track.max_probability}
        vertebrae.append(entry)
        for disease in DISEASES:
            if disease.value in track.called:
                alerts.append({"vertebra": name, "disease": disease.value, "name": DISEASE_NAMES[disease.value],
                               "max_probability": track.max_probability.get(disease.value),
                               "slices": len(track.called[disease.value])})
    alerts.sort(key=lambda a: (-(a["max_probability"] or 0), _level_rank(a["vertebra"])))
    models = sorted({a.model for _, a in slices if a.model})
    return {"case": case, "slices": len(slices), "models": models, "vertebrae": vertebrae, "alerts": alerts,
            "annotated_by_people": any(a.model is None for _, a in slices)}


def _level_rank(name: str) -> int:
    return LEVELS.index(name) if name in LEVELS else len(LEVELS)


def patient_summaries(predictions: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Summaries of every case folder under ``predictions`` and notes about unreadable files."""
    files, notes = labelme_files(predictions, exclude=frozenset({predictions / SUMMARY_JSON}))
    if not files:
        raise no_labelme_files(predictions, notes, what="predicted LabelMe JSON files")
    cases: dict[str, list[tuple[str, SliceAnnotation]]] = {}
    for file in files:
        try:
            annotation = read_labelme(file)
        except VertebraReviewError as exc:
            notes.append(str(exc))
            continue
        case = file.parent.relative_to(predictions).as_posix() or "."
        cases.setdefault(case, []).append((file.stem, annotation))
    return [case_summary(case, slices) for case, slices in sorted(cases.items())], notes


def _case_html(summary: dict[str, Any]) -> str:
    alerts = summary["alerts"]
    lines = [f"<h2>{summary['case']}</h2><p>{summary['slices']} slices · model "
             f"{', '.join(summary['models']) or 'unknown'}</p>"]
    if alerts:
        lines.append(table(["alert: vertebra", "disease", "highest probability", "slices"],
                           [[a["vertebra"], f"{a['disease']} ({a['name']})", a["max_probability"], a["slices"]]
                            for a in alerts]))
    else:
        lines.append("<p>No disease called on any vertebra.</p>")
    codes = [d.value for d in DISEASES]
    rows = [[v["vertebra"], v["slices"], *[v["max_probability"].get(c) for c in codes],
             "+".join(v["diseases"]) or "NORMAL", v["genant"]] for v in summary["vertebrae"]]
    lines.append(table(["vertebra", "slices", *[f"max p {c}" for c in codes], "called", "Genant grade"], rows))
    return "".join(lines)


def write_patient_report(predictions: Path, out: Path | None = None) -> tuple[list[dict[str, Any]], list[str], Path]:
    """``summary.json`` and ``summary.html`` in ``out`` (default: ``predictions``, when those are a model's).

    People's annotations (a reader's or the consensus, without a model) are summarised too, but the summary is not
    put among them unless ``out`` says so, and a ``summary.json`` that is not such a summary (a slice named
    ``summary``) is never written over."""
    summaries, notes = patient_summaries(predictions)
    if out is None:
        people = [s["case"] for s in summaries if s["annotated_by_people"]]
        if people:
            more = f" and {len(people) - 1} more" if len(people) > 1 else ""
            raise VertebraReviewError(f"these are people's annotations (no model wrote case {people[0]}{more}), so "
                                      f"the summary is not written among them: give --out", predictions)
        out = predictions
    _check_summary_target(out / SUMMARY_JSON)
    page = html_page("Per-patient summary", [_case_html(s) for s in summaries])
    atomic_write_together({out / SUMMARY_JSON: json_bytes({"cases": summaries}, out / SUMMARY_JSON),
                           out / "summary.html": page.encode()})
    return summaries, notes, out


def _check_summary_target(path: Path) -> None:
    """Refuse to write over a ``summary.json`` that an earlier ``report`` did not write."""
    if not os.path.lexists(path):
        return
    try:
        data = json.loads(path.read_bytes()) if path.is_file() and path.stat().st_size < 64 * 2**20 else None
    except (OSError, ValueError):
        data = None
    if not (isinstance(data, dict) and set(data) == {"cases"} and isinstance(data["cases"], list)):
        raise FileWriteError("is not a summary written by vertebra-review report, so it is left as it is: give "
                             "--out another folder", path)

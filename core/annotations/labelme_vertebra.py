"""Stage 2 of reading a LabelMe shape: a checked :class:`~core.annotations.labelme_shape.LabelMeShape` becomes a
:class:`~core.annotations.model.Vertebra`, and, for writing, a vertebra becomes a LabelMe rectangle again.

The label and the disease flags give the diseases; our shape keys (``score``, ``probabilities``, ``level``,
``source``, ``genant``) are read from the shape's other keys, and the rest of them stay in ``Vertebra.extra``.
Boxes of one vertebra in the paper's style (a ``vertebra`` box plus one box per disease) are merged.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.annotations.geometry import cluster_by_iou
from core.annotations.labelme_checks import brief, is_number
from core.annotations.labelme_shape import SHAPE_KEYS, LabelMeShape
from core.annotations.labels import UnknownLabelError, parse_label
from core.annotations.model import LEVELS, Box, Disease, Vertebra, highest_genant, is_genant_grade
from core.errors import AnnotationFileError

#: The shape keys we add to LabelMe's.
OUR_SHAPE_KEYS = frozenset({"score", "probabilities", "level", "source", "genant"})
#: Disease-named boxes of one vertebra (the paper's style) overlap at least this much.
MERGE_IOU = 0.9
_DISEASE_CODES = frozenset(d.value for d in Disease)


def vertebra_from_shape(shape: LabelMeShape, path: Path | None) -> tuple[Vertebra, bool]:
    """The vertebra ``shape`` draws, and whether it was a bare ``vertebra`` box (no disease named or flagged).

    Raises :class:`~core.errors.AnnotationFileError` naming the shape and what is wrong with it.
    """
    where = shape.where
    try:
        box = Box.from_points(shape.points)
    except ValueError as exc:
        raise AnnotationFileError(f"{where} has no area", path) from exc
    try:
        meaning = parse_label(shape.label)
    except UnknownLabelError as exc:
        raise AnnotationFileError(f"{where}: {exc}", path) from exc
    flagged = {Disease(k.upper()) for k, v in shape.flags.items() if k.upper() in _DISEASE_CODES and v}
    # an explicit null does not hide a level named in the label ("L3: OVCF")
    level = _level(shape.other.get("level"), meaning.level, where, path)
    source = shape.other.get("source", "")
    if source is not None and not isinstance(source, str):
        raise AnnotationFileError(f"{where} has a source that is not text", path)
    bare = meaning.vertebra_only and not flagged
    vertebra = Vertebra(
        box=box,
        diseases=meaning.diseases | flagged,
        probabilities=class_numbers(shape.other.get("probabilities"), where, path),
        score=_score(shape.other.get("score"), where, path),
        level=level,
        source=source or "",
        group_id=shape.group_id,
        description=shape.description,
        other_flags={k: v for k, v in shape.flags.items() if k.upper() not in _DISEASE_CODES},
        extra={k: v for k, v in shape.other.items() if k not in OUR_SHAPE_KEYS},
        diagnosed=not bare,
        genant=_genant(shape.other.get("genant"), where, path),
    )
    return vertebra, bare


def _level(value: Any, from_label: str | None, where: str, path: Path | None) -> str | None:
    """The ``level`` key, or when it is missing or null the level the label names; upper case."""
    level = from_label if value is None else value
    if level is not None and (not isinstance(level, str) or level.upper() not in LEVELS):
        raise AnnotationFileError(f"{where} has an unknown level {brief(level)}", path)
    return level.upper() if level else None


def _score(value: Any, where: str, path: Path | None) -> float | None:
    if value is None:
        return None
    if not is_number(value) or not 0.0 <= float(value) <= 1.0:
        raise AnnotationFileError(f"{where} has a score that is not a number from 0 to 1: {brief(value)}", path)
    return float(value)


def _genant(value: Any, where: str, path: Path | None) -> int | None:
    if value is None:
        return None
    if not is_genant_grade(value):
        raise AnnotationFileError(f"{where} has a Genant grade that is not 0, 1, 2 or 3: {brief(value)}", path)
    return int(value)


def class_numbers(value: Any, where: str, path: Path | None, what: str = "probabilities") -> dict[str, float] | None:
    """A class code → number from 0 to 1 map (a box's probabilities, a model result's thresholds); None for null."""
    if value is None:
        return None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and is_number(v) and 0.0 <= float(v) <= 1.0 for k, v in value.items()
    ):
        raise AnnotationFileError(f"{where} has {what} that are not class → number from 0 to 1", path)
    return {k.upper(): float(v) for k, v in value.items()}


def merge_duplicates(parsed: Sequence[tuple[Vertebra, bool]]) -> tuple[Vertebra, ...]:
    """Merge boxes of one vertebra (IoU ≥ MERGE_IOU): the paper's one-box-per-disease style.

    ``parsed`` pairs each vertebra with whether it was a bare ``vertebra`` box, whose box the merged one keeps.
    """
    vertebrae = [v for v, _ in parsed]
    merged: list[Vertebra] = []
    for group in cluster_by_iou([v.box for v in vertebrae], MERGE_IOU):
        if len(group) == 1:
            merged.append(vertebrae[group[0]])
            continue
        members = [vertebrae[i] for i in group]
        bare = [vertebrae[i] for i in group if parsed[i][1]]
        first = members[0]
        diseases = frozenset().union(*(m.diseases for m in members))
        merged.append(
            first.with_changes(
                box=bare[0].box if bare else first.box,
                diseases=diseases,
                level=next((m.level for m in members if m.level), None),
                score=max((m.score for m in members if m.score is not None), default=None),
                probabilities=next((m.probabilities for m in members if m.probabilities), None),
                description="; ".join(dict.fromkeys(m.description for m in members if m.description)),
                other_flags={k: v for m in reversed(members) for k, v in m.other_flags.items()},
                extra={k: v for m in reversed(members) for k, v in m.extra.items()},
                diagnosed=any(m.diagnosed for m in members),
                genant=highest_genant(m.genant for m in members),
            )
        )
    return tuple(merged)


def shape_dict(vertebra: Vertebra) -> dict[str, Any]:
    """One vertebra as a LabelMe rectangle shape (its unknown keys first, so ours always win)."""
    box = vertebra.box
    flags = {d.value: d in vertebra.diseases for d in Disease}
    flags.update({k: v for k, v in vertebra.other_flags.items() if k not in flags})
    shape: dict[str, Any] = {k: v for k, v in vertebra.extra.items() if k not in SHAPE_KEYS | OUR_SHAPE_KEYS}
    shape.update(
        {
            "label": vertebra.label,
            "points": [[box.x1, box.y1], [box.x2, box.y2]],
            "group_id": vertebra.group_id,
            "description": vertebra.description,
            "shape_type": "rectangle",
            "flags": flags,
            "score": vertebra.score,
            "probabilities": dict(vertebra.probabilities) if vertebra.probabilities is not None else None,
            "level": vertebra.level,
            "source": vertebra.source,
        }
    )
    if vertebra.genant is not None:  # only when set: files without grades stay as they were
        shape["genant"] = vertebra.genant
    return shape

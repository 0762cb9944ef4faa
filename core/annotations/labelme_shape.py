"""Stage 1 of reading a LabelMe shape: the JSON object becomes a checked :class:`LabelMeShape`, as labelme's own
``_label_file.py`` keeps a shape's known keys and its ``other_data``.

This layer knows LabelMe only: the label stays text and every key LabelMe does not define (ours, such as ``level``
and ``score``, and anyone else's) is kept, unread, in :attr:`LabelMeShape.other`. Stage 2,
:mod:`core.annotations.labelme_vertebra`, gives them their meaning.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.annotations.labelme_checks import brief, checked_flags, is_int, is_number, type_name
from core.errors import AnnotationFileError

#: The shape keys LabelMe defines; every other key of a shape goes to :attr:`LabelMeShape.other`.
SHAPE_KEYS = frozenset({"label", "points", "group_id", "shape_type", "flags", "description", "mask"})
#: The shape types that draw a vertebra: a rectangle, or a polygon read as its bounding box.
BOX_TYPES = frozenset({"rectangle", "polygon"})
#: Points this far outside the image (labelme rounding) are clamped; farther out is an error.
EDGE_TOLERANCE_PX = 1.0


@dataclass(frozen=True)
class LabelMeShape:
    """One ``rectangle`` or ``polygon`` shape of a LabelMe file, checked.

    ``index`` is the shape's place in the file's ``shapes`` (from 0), which error messages name. ``points`` are
    clamped into the image. ``other`` holds, in the file's order, every key LabelMe does not define, so that they
    can be read by stage 2 and written back. A ``mask`` is not kept: a box has none.
    """

    index: int
    label: str
    shape_type: str
    points: tuple[tuple[float, float], ...]
    group_id: int | None = None
    description: str = ""
    flags: Mapping[str, bool] = field(default_factory=dict)
    other: Mapping[str, Any] = field(default_factory=dict)

    @property
    def where(self) -> str:
        """The shape as error messages name it: ``shape 3 ('OVCF')``."""
        return shape_where(self.index, self.label)


def shape_where(index: int, label: str) -> str:
    return f"shape {index + 1} ({label[:40]!r})"


def read_shape(raw: Any, index: int, width: int, height: int, path: Path | None) -> LabelMeShape | None:
    """Check ``raw``, the ``index``-th shape of a file whose image is ``width`` x ``height``.

    Returns None for a shape that is not a box (a point, a line, a circle...), which is kept as it is. Raises
    :class:`~core.errors.AnnotationFileError` naming the shape and what is wrong with it.
    """
    label, shape_type = _label_and_type(raw, index, path)
    where = shape_where(index, label)
    points = _points(raw.get("points"), where, width, height, path)
    if shape_type not in BOX_TYPES:
        return None
    if shape_type == "rectangle" and len(points) < 2:
        raise AnnotationFileError(f"{where} is a rectangle with {len(points)} point", path)
    flags = checked_flags(raw.get("flags"), f"{where} flags", path)
    group_id = raw.get("group_id")
    if group_id is not None and not is_int(group_id):
        raise AnnotationFileError(f"{where} has a group_id that is not a whole number", path)
    description = raw.get("description") or ""
    if not isinstance(description, str):
        raise AnnotationFileError(f"{where} has a description that is not text", path)
    return LabelMeShape(
        index=index,
        label=label,
        shape_type=shape_type,
        points=points,
        group_id=group_id,
        description=description,
        flags=flags,
        other={k: v for k, v in raw.items() if k not in SHAPE_KEYS},
    )


def _label_and_type(raw: Any, index: int, path: Path | None) -> tuple[str, str]:
    """The shape's label and its type (``polygon`` when missing, as in labelme)."""
    if not isinstance(raw, dict):
        raise AnnotationFileError(f"shape {index + 1} must be an object, not {type_name(raw)}", path)
    label = raw.get("label")
    if not isinstance(label, str):
        raise AnnotationFileError(f"shape {index + 1} has no text label", path)
    shape_type = raw.get("shape_type") or "polygon"
    if not isinstance(shape_type, str):
        raise AnnotationFileError(f"{shape_where(index, label)} has a shape_type that is not text", path)
    return label, shape_type


def _points(points: Any, where: str, width: int, height: int, path: Path | None) -> tuple[tuple[float, float], ...]:
    """Every point as ``(x, y)``, clamped into the image when within EDGE_TOLERANCE_PX of it."""
    if not isinstance(points, list) or not points:
        raise AnnotationFileError(f"{where} has no points", path)
    checked: list[tuple[float, float]] = []
    for point in points:
        if not (isinstance(point, list) and len(point) == 2 and all(is_number(v) for v in point)):
            raise AnnotationFileError(f"{where} has a point that is not [x, y]: {brief(point)}", path)
        x, y = float(point[0]), float(point[1])
        if not (math.isfinite(x) and math.isfinite(y)):
            raise AnnotationFileError(f"{where} has a non-finite coordinate ({x}, {y})", path)
        tol = EDGE_TOLERANCE_PX
        if x < -tol or y < -tol or x > width + tol or y > height + tol:
            raise AnnotationFileError(
                f"{where} has a point at ({x:g}, {y:g}), outside the {width}x{height} image", path
            )
        checked.append((min(max(x, 0.0), float(width)), min(max(y, 0.0), float(height))))
    return tuple(checked)

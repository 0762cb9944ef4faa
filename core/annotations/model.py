"""The annotation data model: vertebra boxes with diseases, levels and provenance, per reader and slice.

Values are immutable; edits make new values (see :mod:`core.annotations.commands`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType
from typing import Any


class Disease(StrEnum):
    """The five disease classes of the paper. A vertebra with none of them is NORMAL."""

    OVCF = "OVCF"  # osteoporotic vertebral compression fracture (acute)
    OF = "OF"  # old fracture
    SN = "SN"  # Schmorl's node
    KD = "KD"  # Kummell's disease
    PS = "PS"  # previous surgery (vertebroplasty or kyphoplasty)


DISEASES: tuple[Disease, ...] = tuple(Disease)
NORMAL = "NORMAL"
#: The classifier's six outputs, in order.
CLASS_CODES: tuple[str, ...] = (*[d.value for d in DISEASES], NORMAL)
DISEASE_NAMES: dict[str, str] = {
    "OVCF": "osteoporotic vertebral compression fracture",
    "OF": "old fracture",
    "SN": "Schmorl's node",
    "KD": "Kummell's disease",
    "PS": "previous surgery (cement)",
    "NORMAL": "normal",
}
#: Vertebral levels from the first cervical to the first sacral; ``None`` means unknown.
LEVELS: tuple[str, ...] = (
    *(f"C{i}" for i in range(1, 8)),
    *(f"T{i}" for i in range(1, 13)),
    *(f"L{i}" for i in range(1, 6)),
    "S1",
)
#: Genant's semi-quantitative fracture grades: 0 normal, 1 mild, 2 moderate, 3 severe.
GENANT_GRADES: tuple[int, ...] = (0, 1, 2, 3)
GENANT_NAMES: dict[int, str] = {0: "normal", 1: "mild", 2: "moderate", 3: "severe"}
MODEL_SOURCE = "model"
#: The label of a box without a diagnosis (the paper's detection annotation, or a detector's output).
VERTEBRA_LABEL = "vertebra"


def sort_diseases(diseases: Iterable[Disease]) -> tuple[Disease, ...]:
    wanted = set(diseases)
    return tuple(d for d in DISEASES if d in wanted)


def disease_label(diseases: Iterable[Disease]) -> str:
    """``OVCF+KD`` style label, or ``NORMAL``."""
    ordered = sort_diseases(diseases)
    return "+".join(d.value for d in ordered) if ordered else NORMAL


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in slice pixel coordinates (floats; ``x1 < x2``, ``y1 < y2``)."""

    x1: float
    y1: float
    x2: float
    y2: float

    def __post_init__(self) -> None:
        values = (self.x1, self.y1, self.x2, self.y2)
        if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) for v in values):
            raise ValueError(f"box coordinates must be finite numbers, not {values}")
        for name, value in zip(("x1", "y1", "x2", "y2"), values, strict=True):
            object.__setattr__(self, name, float(value))  # numpy scalars from models become plain floats
        if self.x2 <= self.x1 or self.y2 <= self.y1:
            raise ValueError(f"box has no area: {values}")

    @classmethod
    def from_points(cls, points: Iterable[Iterable[float]]) -> Box:
        """The bounding box of any number of points (a 2-point rectangle or a polygon)."""
        xs, ys = zip(*((float(x), float(y)) for x, y in points), strict=True)
        return cls(min(xs), min(ys), max(xs), max(ys))

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    @property
    def area(self) -> float:
        return self.width * self.height

    @property
    def centre(self) -> tuple[float, float]:
        return ((self.x1 + self.x2) / 2, (self.y1 + self.y2) / 2)

    def as_list(self) -> list[float]:
        return [self.x1, self.y1, self.x2, self.y2]

    def translated(self, dx: float, dy: float) -> Box:
        return Box(self.x1 + dx, self.y1 + dy, self.x2 + dx, self.y2 + dy)

    def clipped(self, width: float, height: float) -> Box:
        return Box(max(0.0, self.x1), max(0.0, self.y1), min(width, self.x2), min(height, self.y2))


def is_genant_grade(value: Any) -> bool:
    """Whether ``value`` is a Genant grade: an int 0-3 (a bool is not a grade, nor is 2.0)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value in GENANT_GRADES


def highest_genant(grades: Iterable[int | None]) -> int | None:
    """The highest of the known grades (one vertebra seen several times: merged boxes, slices, readers), or None."""
    return max((g for g in grades if g is not None), default=None)


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class Vertebra:
    """One vertebral body on one slice.

    ``diseases`` empty means NORMAL. ``probabilities`` (class code → probability) and ``score`` (detector
    confidence) are set when a model produced the vertebra. ``diagnosed`` is false for a box that only says
    "a vertebra is here" (a detector's output, the paper's detection boxes); training counts it NORMAL.
    ``level`` is ``T1``…``L5``, ``S1`` or None (unknown). ``genant`` is the Genant fracture grade (0-3) when one
    came with the image (an imported segmented CT with a grades table), else None; readers do not edit it.
    ``source`` is ``"model"`` or the id of the reader who drew or last changed it. ``other_flags`` and ``extra`` keep
    LabelMe flags and shape keys that are not ours, so that they are written back unchanged.
    """

    box: Box
    diseases: frozenset[Disease] = frozenset()
    probabilities: Mapping[str, float] | None = None
    score: float | None = None
    level: str | None = None
    source: str = MODEL_SOURCE
    group_id: int | None = None
    description: str = ""
    other_flags: Mapping[str, bool] = field(default_factory=lambda: _frozen(None))
    extra: Mapping[str, Any] = field(default_factory=lambda: _frozen(None))
    diagnosed: bool = True
    genant: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "diseases", frozenset(Disease(d) for d in self.diseases))
        if self.diseases and not self.diagnosed:
            object.__setattr__(self, "diagnosed", True)
        if not isinstance(self.other_flags, MappingProxyType):
            object.__setattr__(self, "other_flags", _frozen(self.other_flags))
        if self.level is not None and self.level not in LEVELS:
            raise ValueError(f"unknown vertebral level {self.level!r}; use one of {', '.join(LEVELS)}")
        if self.genant is not None:
            if not is_genant_grade(self.genant):
                raise ValueError(f"Genant grade must be a whole number from 0 to 3, not {self.genant!r}")
            object.__setattr__(self, "genant", int(self.genant))  # a numpy integer becomes a plain int
        if self.probabilities is not None:
            object.__setattr__(self, "probabilities", _frozen(self.probabilities))
        if not isinstance(self.extra, MappingProxyType):
            object.__setattr__(self, "extra", _frozen(self.extra))

    @property
    def is_normal(self) -> bool:
        return not self.diseases

    @property
    def label(self) -> str:
        """``OVCF+KD`` style, ``NORMAL``, or ``vertebra`` for a box nobody has diagnosed yet (a detector's box)."""
        return disease_label(self.diseases) if self.diagnosed else VERTEBRA_LABEL

    def with_changes(self, **changes: Any) -> Vertebra:
        return replace(self, **changes)


@dataclass(frozen=True)
class SliceAnnotation:
    """One reader's vertebrae on one slice (or the model's, or the consensus).

    ``extra`` keeps unknown top-level LabelMe keys; ``other_shapes`` keeps shapes that are not vertebra boxes
    (points, lines, …) exactly as read, so both are written back. ``thresholds`` (disease code → probability) are
    the decision thresholds with which a model called the diseases in its result, so that how close each call was
    can be judged later (:mod:`core.review.confidence`); None for a reader's file or an older result.
    """

    image_width: int
    image_height: int
    vertebrae: tuple[Vertebra, ...] = ()
    image_path: str = ""
    reader: str | None = None
    model: str | None = None
    reviewed: bool = False
    flags: Mapping[str, bool] = field(default_factory=lambda: _frozen(None))
    image_data: str | None = None
    other_shapes: tuple[Mapping[str, Any], ...] = ()
    extra: Mapping[str, Any] = field(default_factory=lambda: _frozen(None))
    thresholds: Mapping[str, float] | None = None

    def __post_init__(self) -> None:
        if self.image_width <= 0 or self.image_height <= 0:
            raise ValueError(f"image size must be positive, not {self.image_width}x{self.image_height}")
        object.__setattr__(self, "vertebrae", tuple(self.vertebrae))
        if self.thresholds is not None:
            object.__setattr__(self, "thresholds", _frozen(self.thresholds))
        for name in ("flags", "extra"):
            value = getattr(self, name)
            if not isinstance(value, MappingProxyType):
                object.__setattr__(self, name, _frozen(value))

    def with_changes(self, **changes: Any) -> SliceAnnotation:
        return replace(self, **changes)

    def diseased(self) -> tuple[Vertebra, ...]:
        return tuple(v for v in self.vertebrae if v.diseases)

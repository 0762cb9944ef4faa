"""Matching the readers' vertebra boxes on one slice, and classifying each matched vertebra.

**Matching.** The readers are taken in their given order. The first reader's boxes start one group each. Each next
reader's boxes are assigned one to one to the groups built so far with the Hungarian method
(``scipy.optimize.linear_sum_assignment``): a box may join a group only when it *hits every box already in the
group* (IoM, the paper's hit rule, or IoU above the threshold; complete linkage), so every two boxes of a group hit
each other. Among the admissible assignments the one with the most matches wins, and among those the one with the
highest mean IoU (so a near-identical box is preferred to a small stray box that lies inside the same vertebra,
which has the same IoM). A box that joins no group starts a new one. Each group holds at most one box per reader.

**Classification** of a group, over the readers who have a file for the slice:

- ``missing``: some reader drew no box here (the group is *missing for* them; a stray box is missing for the rest);
- ``unanimous``: every reader drew it with the same disease set;
- ``majority``: every reader drew it and more than half give the same disease set (2 of 3);
- ``conflict``: every reader drew it and no disease set has more than half (all three differ).

Per disease flag the same rule is applied to the readers who drew the box (a reader who drew no box gives no
opinion on its flags). Separately, a group whose boxes differ (the lowest IoU of two of its boxes is below
``box_tolerance``) is flagged, because a box moved by one reader is a disagreement even with the same label.

The *majority call* is what more than half of the readers say, counting "no box here" as a vote: a vertebra with
its disease set, or no vertebra (a stray box). When no view has more than half, there is no majority call and a
person has to choose.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from statistics import median
from types import MappingProxyType

import numpy as np

from core.annotations.geometry import HIT_IOM, iom_matrix, iou_matrix
from core.annotations.model import DISEASES, Box, Disease, Vertebra, disease_label, highest_genant
from core.errors import ConsensusError

MEASURES = ("iom", "iou")
#: The paper's hit rule by default (IoM above 0.5). Matching is not :func:`core.annotations.geometry.pair_by_iom`
#: itself: it links several readers (a box must hit every box already in its group, complete linkage), the measure
#: and threshold are the user's to choose, and closeness is judged by IoU (two readers draw the same vertebra at
#: the same size, so a near-identical box beats a small stray one inside it, whose IoM is the same).
DEFAULT_THRESHOLD = HIT_IOM
#: Boxes of one group whose IoU falls below this are flagged as drawn differently.
DEFAULT_BOX_TOLERANCE = 0.6
NO_BOX = "no box"


class Agreement(StrEnum):
    UNANIMOUS = "unanimous"
    MAJORITY = "majority"
    CONFLICT = "conflict"
    MISSING = "missing"


@dataclass(frozen=True)
class MatchSettings:
    """How boxes are matched (``measure`` above ``threshold``) and when matched boxes count as drawn differently."""

    measure: str = "iom"
    threshold: float = DEFAULT_THRESHOLD
    box_tolerance: float = DEFAULT_BOX_TOLERANCE

    def __post_init__(self) -> None:
        if self.measure not in MEASURES:
            raise ConsensusError(f"unknown box measure {self.measure!r}: use iom or iou")
        for name in ("threshold", "box_tolerance"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise ConsensusError(f"{name.replace('_', ' ')} must be a number from 0 to below 1, not {value!r}")

    def overlap(self, a: Sequence[Box], b: Sequence[Box]) -> np.ndarray:
        return iom_matrix(a, b) if self.measure == "iom" else iou_matrix(a, b)

    def describe(self) -> str:
        return f"{'IoM' if self.measure == 'iom' else 'IoU'} > {self.threshold:g}"

    def to_json(self) -> dict[str, object]:
        return {"measure": self.measure, "threshold": self.threshold, "box_tolerance": self.box_tolerance}


@dataclass(frozen=True)
class MajorityCall:
    """What more than half of the readers say about a group: a vertebra with ``diseases`` and ``box`` (the
    coordinate-wise median of the majority's boxes), or, when ``present`` is false, no vertebra at all."""

    present: bool
    diseases: frozenset[Disease]
    box: Box | None
    level: str | None
    voters: tuple[str, ...]
    genant: int | None = None  # the highest imported Genant grade of the majority's vertebrae


def median_box(boxes: Sequence[Box]) -> Box:
    """The coordinate-wise median: with three readers, one box moved away does not move the result. (Plain Python:
    on a handful of boxes it is many times faster than ``np.median``, and the case list runs it on every slice.)"""
    return Box(*(float(median(values)) for values in zip(*(b.as_list() for b in boxes), strict=True)))


def common_level(vertebrae: Sequence[Vertebra]) -> str | None:
    """The level most of them give (ties go to the earliest reader); None when nobody gives one."""
    levels = [v.level for v in vertebrae if v.level]
    if not levels:
        return None
    counts = Counter(levels)
    best = max(counts.values())
    return next(level for level in levels if counts[level] == best)


def _vote_status(votes: Sequence[object]) -> Agreement:
    counts = Counter(votes)
    if len(counts) <= 1:
        return Agreement.UNANIMOUS
    return Agreement.MAJORITY if max(counts.values()) * 2 > len(votes) else Agreement.CONFLICT


@dataclass(frozen=True)
class VertebraGroup:
    """One vertebra as the readers saw it: each compared reader's box, or None where that reader drew none."""

    index: int
    versions: Mapping[str, Vertebra | None]
    status: Agreement
    flags: Mapping[str, Agreement]
    min_iou: float | None
    boxes_differ: bool
    majority: MajorityCall | None
    box: Box = field(compare=False)

    @property
    def readers(self) -> tuple[str, ...]:
        return tuple(self.versions)

    @property
    def drawn_by(self) -> tuple[str, ...]:
        return tuple(r for r, v in self.versions.items() if v is not None)

    @property
    def missing_for(self) -> tuple[str, ...]:
        return tuple(r for r, v in self.versions.items() if v is None)

    @property
    def is_disagreement(self) -> bool:
        return self.status is not Agreement.UNANIMOUS or self.boxes_differ

    @property
    def kinds(self) -> tuple[str, ...]:
        """What differs: ``missing`` (presence), ``label`` (disease sets), ``box`` (drawn differently)."""
        kinds = []
        if self.status is Agreement.MISSING:
            kinds.append("missing")
        if len({self._label(v) for v in self.versions.values() if v is not None}) > 1:
            kinds.append("label")
        if self.boxes_differ:
            kinds.append("box")
        return tuple(kinds)

    @staticmethod
    def _label(vertebra: Vertebra | None) -> str:
        return NO_BOX if vertebra is None else disease_label(vertebra.diseases)

    def labels(self) -> dict[str, str]:
        """Each reader's label side by side (``no box`` where the reader drew none)."""
        return {r: self._label(v) for r, v in self.versions.items()}

    def fingerprint(self) -> list[dict[str, object] | None]:
        """The readers' versions in a form that is stored with a resolution and compared after a reload."""
        return [version_json(r, v) for r, v in self.versions.items()]


def version_json(reader: str, vertebra: Vertebra | None) -> dict[str, object] | None:
    if vertebra is None:
        return {"reader": reader, "box": None}
    return {
        "reader": reader,
        "box": [round(c, 3) for c in vertebra.box.as_list()],
        "diseases": [d.value for d in DISEASES if d in vertebra.diseases],
        "level": vertebra.level,
    }


def classify_group(index: int, versions: Mapping[str, Vertebra | None], settings: MatchSettings) -> VertebraGroup:
    """A :class:`VertebraGroup` with its status, per-flag status, box agreement and majority call."""
    drawn = {r: v for r, v in versions.items() if v is not None}
    if not drawn:
        raise ConsensusError("a vertebra group needs at least one box")
    complete = len(drawn) == len(versions)
    status = _vote_status([v.diseases for v in drawn.values()]) if complete else Agreement.MISSING
    flags = {d.value: _vote_status([d in v.diseases for v in drawn.values()]) for d in DISEASES}
    boxes = [v.box for v in drawn.values()]
    min_iou = None
    if len(boxes) > 1:
        matrix = iou_matrix(boxes, boxes)
        min_iou = float(matrix[np.triu_indices(len(boxes), k=1)].min())
    return VertebraGroup(
        index=index,
        versions=MappingProxyType(dict(versions)),
        status=status,
        flags=MappingProxyType(flags),
        min_iou=min_iou,
        boxes_differ=min_iou is not None and min_iou < settings.box_tolerance,
        majority=majority_call(versions),
        box=median_box(boxes),
    )


def majority_call(versions: Mapping[str, Vertebra | None]) -> MajorityCall | None:
    """The view held by more than half of the readers ("no box" is a view too), or None."""
    votes = {r: (None if v is None else v.diseases) for r, v in versions.items()}
    counts = Counter(votes.values())
    view, count = counts.most_common(1)[0]
    if count * 2 <= len(votes):
        return None
    voters = tuple(r for r, vote in votes.items() if vote == view)
    if view is None:
        return MajorityCall(False, frozenset(), None, None, voters)
    chosen = [versions[r] for r in voters]
    return MajorityCall(True, view, median_box([v.box for v in chosen]), common_level(chosen), voters,
                        highest_genant(v.genant for v in chosen))


def _assign(groups: list[dict[str, Vertebra]], boxes: Sequence[Vertebra], settings: MatchSettings) -> dict[int, int]:
    """Box index → group index, one to one, each box hitting every member of its group."""
    new = [v.box for v in boxes]
    admissible = np.zeros((len(groups), len(new)), dtype=bool)
    closeness = np.zeros((len(groups), len(new)))
    for g, members in enumerate(groups):
        old = [v.box for v in members.values()]
        admissible[g] = (settings.overlap(old, new) > settings.threshold).all(axis=0)
        closeness[g] = iou_matrix(old, new).mean(axis=0)
    # More matches first, then closer ones: one more match outweighs any sum of IoUs (each at most 1).
    weight = np.where(admissible, min(admissible.shape) + 1 + closeness, 0.0)
    from scipy.optimize import linear_sum_assignment  # loaded when first needed: the window opens faster

    rows, cols = linear_sum_assignment(weight, maximize=True)
    return {int(c): int(r) for r, c in zip(rows, cols, strict=True) if admissible[r, c]}


def match_vertebrae(vertebrae: Mapping[str, Sequence[Vertebra]], settings: MatchSettings) -> list[VertebraGroup]:
    """Group the readers' boxes (reader → their vertebrae on one slice), ordered top to bottom on the slice."""
    groups: list[dict[str, Vertebra]] = []
    for reader, boxes in vertebrae.items():
        assigned = _assign(groups, boxes, settings) if groups and boxes else {}
        for i, vertebra in enumerate(boxes):
            if i in assigned:
                groups[assigned[i]][reader] = vertebra
            else:
                groups.append({reader: vertebra})
    readers = list(vertebrae)

    def position(members: dict[str, Vertebra]) -> tuple[float, float]:
        box = median_box([v.box for v in members.values()])
        return box.centre[1], box.centre[0]

    ordered = sorted(groups, key=position)
    return [
        classify_group(i, {r: members.get(r) for r in readers}, settings) for i, members in enumerate(ordered, start=1)
    ]

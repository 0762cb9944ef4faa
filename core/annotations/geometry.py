"""Box overlap measures: IoU, and the paper's IoM (intersection over the smaller box's area); the paper's hit rule.

**The hit rule**, written here once: a detected box and an annotated box are a *hit* (the same vertebra) when their
IoM is above :data:`HIT_IOM`, the boxes paired one to one (:func:`pair_by_iom`). A detection counts when its score is
at least :data:`DETECTION_THRESHOLD`. Everything that asks "are these two boxes the same vertebra?" (evaluation,
level propagation, tracking a vertebra through a case's slices, readers' disagreement) uses them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.annotations.model import Box

#: The paper's hit rule: two boxes are the same vertebra when their IoM is above this (strictly: 0.5 is no hit).
HIT_IOM = 0.5
#: The paper's detection cut-off: a detected box counts when its score is at least this.
DETECTION_THRESHOLD = 0.75
#: Totals of IoM closer than this count as a tie in :func:`pair_by_iom`, which IoU then breaks.
_IOM_TIE = 1e-9


def _as_array(boxes: Sequence[Box] | np.ndarray) -> np.ndarray:
    if isinstance(boxes, np.ndarray):
        return boxes.reshape(-1, 4).astype(float, copy=False)
    return np.array([b.as_list() for b in boxes], dtype=float).reshape(-1, 4)


def intersection_matrix(a: Sequence[Box] | np.ndarray, b: Sequence[Box] | np.ndarray) -> np.ndarray:
    """Pairwise intersection areas, shape (len(a), len(b))."""
    a, b = _as_array(a), _as_array(b)
    left = np.maximum(a[:, None, 0], b[None, :, 0])
    top = np.maximum(a[:, None, 1], b[None, :, 1])
    right = np.minimum(a[:, None, 2], b[None, :, 2])
    bottom = np.minimum(a[:, None, 3], b[None, :, 3])
    return np.clip(right - left, 0, None) * np.clip(bottom - top, 0, None)


def _areas(boxes: np.ndarray) -> np.ndarray:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def iou_matrix(a: Sequence[Box] | np.ndarray, b: Sequence[Box] | np.ndarray) -> np.ndarray:
    """Pairwise intersection over union."""
    a, b = _as_array(a), _as_array(b)
    inter = intersection_matrix(a, b)
    union = _areas(a)[:, None] + _areas(b)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def iom_matrix(a: Sequence[Box] | np.ndarray, b: Sequence[Box] | np.ndarray) -> np.ndarray:
    """Pairwise intersection over the smaller of the two areas (the paper's hit measure)."""
    a, b = _as_array(a), _as_array(b)
    inter = intersection_matrix(a, b)
    smaller = np.minimum(_areas(a)[:, None], _areas(b)[None, :])
    return np.divide(inter, smaller, out=np.zeros_like(inter), where=smaller > 0)


def iou(a: Box, b: Box) -> float:
    return float(iou_matrix([a], [b])[0, 0])


def iom(a: Box, b: Box) -> float:
    return float(iom_matrix([a], [b])[0, 0])


def pair_by_iom(a: Sequence[Box] | np.ndarray, b: Sequence[Box] | np.ndarray,
                min_iom: float = HIT_IOM) -> list[tuple[int, int]]:
    """The hits between boxes ``a`` and ``b``: (index in ``a``, index in ``b``) pairs, one to one, each with IoM
    above ``min_iom`` (strictly), in order of the index in ``a``.

    A Hungarian assignment (scipy's ``linear_sum_assignment``) over the pairs that hit chooses, in this order: the
    most pairs (a pair below the cut-off never costs a hit); then the largest total IoM; then, among totals within
    1e-9 of each other, the largest total IoU, so a box that wholly covers two others (IoM 1 with both) pairs with
    the one of its own size. Exact ties are resolved the same way every time (scipy's solver is deterministic: the
    lower index). An empty side, or a box of zero area (IoM 0 with everything), gives no pairs.
    """
    if not 0.0 <= min_iom <= 1.0:
        raise ValueError(f"min_iom is an IoM from 0 to 1, not {min_iom!r}")
    overlaps = iom_matrix(a, b)
    hit = overlaps > min_iom
    if not hit.any():
        return []
    most = min(hit.shape)
    # One more pair outweighs any total of IoM (each at most 1), which outweighs any total of the IoU tie-break.
    weight = np.where(hit, (most + 1) + overlaps + (_IOM_TIE / most) * iou_matrix(a, b), 0.0)
    from scipy.optimize import linear_sum_assignment  # scipy loads in ~1.7 s: only when boxes are matched

    rows, cols = linear_sum_assignment(weight, maximize=True)
    return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if hit[r, c]]


def cluster_by_iou(boxes: Sequence[Box], threshold: float) -> list[list[int]]:
    """Groups of box indices linked by IoU ≥ ``threshold`` (connected components), in order of first index."""
    n = len(boxes)
    if n == 0:
        return []
    linked = iou_matrix(boxes, boxes) >= threshold
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(*np.nonzero(np.triu(linked, k=1)), strict=True):
        ri, rj = find(int(i)), find(int(j))
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    return sorted(groups.values(), key=lambda g: g[0])

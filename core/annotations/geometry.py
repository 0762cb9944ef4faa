"""Box overlap measures: IoU, and the paper's IoM (intersection over the smaller box's area)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.annotations.model import Box


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

"""Vertebra levels (T1 … L5, S1), which the paper could not give.

On a sagittal slice (superior up) the vertebral bodies follow the spine's curve from top to bottom, so their order
along the curve is the order of their centres from top to bottom. Levels are counted from an **anchor**:

- the **sacrum** (S1) when it is detected: the lowest box is S1 when a small logistic model on its shape and its
  place in the chain (height, width and aspect against the other boxes, the gap above it, its forward shift) says
  so. The model is fitted on training slices whose annotations carry levels and stored as plain numbers in the
  detector's manifest (nothing is unpickled);
- or a level the user sets on one box.

Without an anchor every level stays unknown. Within a case, the slice with the surest sacrum lends its levels to the
other slices through boxes that hit (the paper's hit rule, :func:`~core.annotations.geometry.pair_by_iom`), as all
slices cut the same spine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from core.annotations.geometry import HIT_IOM, pair_by_iom
from core.annotations.model import LEVELS

SACRUM = "S1"
FEATURES = ("height", "width", "aspect", "gap", "shift", "tilt")
#: A step between neighbouring boxes this many times the usual one leaves a vertebra out (see spine_positions).
GAP_STEP = 1.6


def spine_order(boxes: np.ndarray) -> np.ndarray:
    """Indices of ``boxes`` from the top of the spine to the bottom."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.argsort((b[:, 1] + b[:, 3]) / 2, kind="stable")


def bottom_features(boxes: np.ndarray) -> np.ndarray | None:
    """Features of the lowest box against the chain above it, or None with fewer than three boxes."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)[spine_order(boxes)]
    if len(b) < 3:
        return None
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    others = slice(0, -1)
    gaps = b[1:, 1] - b[:-1, 3]
    step = np.hypot(cx[-1] - cx[-2], cy[-1] - cy[-2])
    return np.array([
        h[-1] / np.median(h[others]),
        w[-1] / np.median(w[others]),
        (h[-1] / w[-1]) / np.median(h[others] / w[others]),
        (gaps[-1] - np.median(gaps[:-1]) if len(gaps) > 1 else gaps[-1]) / np.median(h[others]),
        (cx[-1] - cx[-2]) / np.median(w[others]),
        (cx[-1] - cx[-2]) / step if step > 0 else 0.0,
    ])


def fit_sacrum_model(slices: Sequence[tuple[np.ndarray, Sequence[str | None]]]) -> dict[str, Any] | None:
    """Fit the sacrum model on (boxes, levels) of annotated slices; None when the levels do not allow it (no slice
    ends with S1, or none ends with another level)."""
    from sklearn.linear_model import LogisticRegression

    rows, targets = [], []
    for boxes, levels in slices:
        if not len(levels) or any(level is None for level in levels):
            continue
        features = bottom_features(boxes)
        if features is None:
            continue
        rows.append(features)
        targets.append(levels[int(spine_order(boxes)[-1])] == SACRUM)
    if len(set(targets)) < 2:
        return None
    x = np.array(rows)
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000).fit((x - mean) / scale, targets)
    return {"features": list(FEATURES), "mean": mean.tolist(), "scale": scale.tolist(),
            "coef": model.coef_[0].tolist(), "intercept": float(model.intercept_[0]), "slices": len(rows)}


def sacrum_probability(boxes: np.ndarray, model: Mapping[str, Any] | None) -> float:
    """How likely the lowest box is S1 (0 without a model or with fewer than three boxes)."""
    features = bottom_features(boxes)
    if model is None or features is None:
        return 0.0
    z = (features - np.asarray(model["mean"])) / np.asarray(model["scale"])
    return float(1 / (1 + np.exp(-(z @ np.asarray(model["coef"]) + model["intercept"]))))


def spine_positions(boxes: np.ndarray) -> np.ndarray:
    """Each box's place along the spine, counting the vertebrae a slice leaves out: where the step between two
    neighbouring boxes' centres is :data:`GAP_STEP` times the median of the steps near it or more, the missing
    bodies (a body the slab cuts too little of, or one the detector missed) are counted in, so the levels below do
    not slip."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    order = spine_order(b)
    positions = np.zeros(len(b), dtype=int)
    if len(b) < 3:
        positions[order] = np.arange(len(b))
        return positions
    centres = np.stack([(b[order, 0] + b[order, 2]) / 2, (b[order, 1] + b[order, 3]) / 2], axis=1)
    steps = np.hypot(*np.diff(centres, axis=0).T)
    skipped = np.zeros(len(steps))
    for i, step in enumerate(steps):  # against the steps nearby: bodies grow down the spine
        nearby = np.delete(steps[max(0, i - 3):i + 4], min(i, 3))
        typical = float(np.median(nearby))
        if typical > 0 and step >= GAP_STEP * typical:
            skipped[i] = np.rint(step / typical) - 1
    positions[order] = np.concatenate([[0], np.cumsum(1 + skipped)]).astype(int)
    return positions


def assign_levels(boxes: np.ndarray, anchor: tuple[int, str] | None) -> list[str | None]:
    """Levels of ``boxes`` counted along the spine from ``anchor`` = (box index, its level); None without one."""
    n = len(np.asarray(boxes).reshape(-1, 4))
    if anchor is None or anchor[1] not in LEVELS or not 0 <= anchor[0] < n:
        return [None] * n
    positions = spine_positions(boxes)
    base = LEVELS.index(anchor[1]) - positions[anchor[0]]
    levels: list[str | None] = [None] * n
    for index in range(n):
        position = int(base + positions[index])
        levels[index] = LEVELS[position] if 0 <= position < len(LEVELS) else None
    return levels


def slice_levels(boxes: np.ndarray, model: Mapping[str, Any] | None, threshold: float = 0.5) -> tuple[list, float]:
    """(levels, sacrum probability) of one slice, anchored on the sacrum when it is detected."""
    probability = sacrum_probability(boxes, model)
    if probability < threshold:
        return [None] * len(np.asarray(boxes).reshape(-1, 4)), probability
    return assign_levels(boxes, (int(spine_order(boxes)[-1]), SACRUM)), probability


def propagate_levels(slices: Sequence[np.ndarray], levels: Sequence[Sequence[str | None]],
                     confidence: Sequence[float], min_iom: float = HIT_IOM) -> list[list[str | None]]:
    """Levels for every slice of a case from its most confident anchored slice, through matching boxes."""
    result = [list(level) for level in levels]
    anchored = [i for i, lv in enumerate(levels) if any(lv)]
    if not anchored:
        return result
    source = max(anchored, key=lambda i: confidence[i])
    reference, reference_levels = np.asarray(slices[source]).reshape(-1, 4), levels[source]
    for i, boxes in enumerate(slices):
        boxes = np.asarray(boxes).reshape(-1, 4)
        if i == source:
            continue
        positions = spine_positions(boxes)
        pairs = [(r, str(reference_levels[c])) for r, c in pair_by_iom(boxes, reference, min_iom)
                 if reference_levels[c] is not None]
        if not pairs:
            continue
        offsets = [LEVELS.index(level) - int(positions[r]) for r, level in pairs]
        best = max(set(offsets), key=offsets.count)  # the shift most matched boxes agree on
        result[i] = assign_levels(boxes, pairs[offsets.index(best)])
    return result

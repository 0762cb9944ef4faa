"""Detection metrics: the precision-recall curve and AP, COCO AP50:95, and the paper's IoM hit, FN and FP counts.

- **AP** at IoU 0.5: detections of all images ranked by score; each is a true positive when it overlaps a not yet
  matched annotated box with IoU ≥ 0.5 (greedy, best score first, as in COCO). AP is the area under the stepwise
  precision-recall curve (scikit-learn's average precision, rescaled so that annotated boxes never detected count
  as missed recall).
- **COCO AP50:95**: the mean AP over IoU thresholds 0.50, 0.55 … 0.95.
- **The paper's hits** at a score threshold (0.75, :data:`~core.annotations.geometry.DETECTION_THRESHOLD`):
  detections and annotations are paired by the paper's hit rule (:func:`~core.annotations.geometry.pair_by_iom`: one
  to one, IoM, the intersection over the smaller box's area, above 0.5); a pair is a hit, an annotation without one
  is a false negative (FN), a detection without one a false positive (FP). FN rate = FN / annotated;
  FP rate = FP / detected.
- **Counts**: detected against annotated vertebrae per image, with Pearson's r.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import pearsonr
from sklearn.metrics import average_precision_score

from core.annotations.geometry import DETECTION_THRESHOLD, HIT_IOM, iou_matrix, pair_by_iom

#: AP50: a detection is a true positive at IoU ≥ this (COCO's rule for the precision-recall curve, not the hit rule).
AP_IOU = 0.5
COCO_IOUS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))


@dataclass(frozen=True)
class ImageDetections:
    """One image: detected boxes with scores, and the annotated (true) boxes, all (n, 4) in the same pixels."""

    name: str
    boxes: np.ndarray
    scores: np.ndarray
    truth: np.ndarray

    @classmethod
    def of(cls, name: str, boxes: Sequence, scores: Sequence, truth: Sequence) -> ImageDetections:
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        s = np.asarray(scores, dtype=np.float64).reshape(-1)
        t = np.asarray(truth, dtype=np.float64).reshape(-1, 4)
        if len(b) != len(s):
            raise ValueError(f"{name}: {len(b)} boxes but {len(s)} scores")
        return cls(name, b, s, t)


def _greedy_matches(image: ImageDetections, iou_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(scores, true-positive flags) of the image's detections, COCO-style greedy matching."""
    order = np.argsort(-image.scores, kind="stable")
    scores = image.scores[order]
    positive = np.zeros(len(order), dtype=bool)
    if len(image.truth) and len(order):
        overlaps = iou_matrix(image.boxes[order], image.truth)
        taken = np.zeros(len(image.truth), dtype=bool)
        for i in range(len(order)):
            candidates = np.where(~taken & (overlaps[i] >= iou_threshold), overlaps[i], -1.0)
            best = int(np.argmax(candidates))
            if candidates[best] >= iou_threshold:
                taken[best] = True
                positive[i] = True
    return scores, positive


@dataclass(frozen=True)
class PrecisionRecall:
    ap: float
    precision: np.ndarray
    recall: np.ndarray
    thresholds: np.ndarray


def precision_recall(images: Sequence[ImageDetections], iou_threshold: float = AP_IOU) -> PrecisionRecall:
    """The precision-recall curve over all images and its average precision."""
    scores, positive = [], []
    for image in images:
        s, p = _greedy_matches(image, iou_threshold)
        scores.append(s)
        positive.append(p)
    all_scores = np.concatenate(scores) if scores else np.zeros(0)
    all_positive = np.concatenate(positive) if positive else np.zeros(0, dtype=bool)
    annotated = sum(len(image.truth) for image in images)
    if annotated == 0 or all_positive.sum() == 0:
        return PrecisionRecall(0.0, np.array([1.0]), np.array([0.0]), np.array([]))
    # scikit-learn's AP uses the detections' own positives as recall's denominator; rescale by the share of
    # annotated boxes that were found at all, so that missed boxes cost recall.
    found = all_positive.sum() / annotated
    ap = float(average_precision_score(all_positive, all_scores) * found)
    order = np.argsort(-all_scores, kind="stable")
    tp = np.cumsum(all_positive[order])
    fp = np.cumsum(~all_positive[order])
    precision = tp / (tp + fp)
    recall = tp / annotated
    return PrecisionRecall(ap, precision, recall, all_scores[order])


def coco_ap(images: Sequence[ImageDetections]) -> float:
    return float(np.mean([precision_recall(images, t).ap for t in COCO_IOUS]))


@dataclass(frozen=True)
class HitCounts:
    hits: int
    fp: int
    fn: int
    detected: int
    annotated: int


def iom_hits(image: ImageDetections, threshold: float = DETECTION_THRESHOLD, min_iom: float = HIT_IOM) -> HitCounts:
    """The paper's hit, FP and FN counts for one image, detections at or above ``threshold``."""
    boxes = image.boxes[image.scores >= threshold]
    hits = len(pair_by_iom(boxes, image.truth, min_iom))
    return HitCounts(hits, len(boxes) - hits, len(image.truth) - hits, len(boxes), len(image.truth))


def detection_metrics(images: Sequence[ImageDetections], threshold: float = DETECTION_THRESHOLD) -> dict:
    """Every detection figure, JSON-ready (see the module's description)."""
    curve = precision_recall(images, AP_IOU)
    counts = [iom_hits(image, threshold) for image in images]
    hits = sum(c.hits for c in counts)
    fp = sum(c.fp for c in counts)
    fn = sum(c.fn for c in counts)
    detected = sum(c.detected for c in counts)
    annotated = sum(c.annotated for c in counts)
    detected_per_image = [c.detected for c in counts]
    annotated_per_image = [c.annotated for c in counts]
    count_r = None
    if len(images) > 2 and np.std(detected_per_image) > 0 and np.std(annotated_per_image) > 0:
        count_r = float(pearsonr(detected_per_image, annotated_per_image).statistic)
    return plain({
        "ap50": curve.ap,
        "ap50_95": coco_ap(images),
        "threshold": threshold,
        "hits": hits,
        "fp": fp,
        "fn": fn,
        "fp_rate": fp / detected if detected else 0.0,
        "fn_rate": fn / annotated if annotated else 0.0,
        "detected": detected,
        "annotated": annotated,
        "images": len(images),
        "count_r": count_r,
        "per_image": [
            {"name": image.name, "annotated": c.annotated, "detected": c.detected, "hits": c.hits, "fp": c.fp,
             "fn": c.fn}
            for image, c in zip(images, counts, strict=True)
        ],
    })


def plain(value: Any) -> Any:
    """``value`` with numpy scalars turned into Python numbers (for JSON and weights-only checkpoints)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value

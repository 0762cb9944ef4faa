"""What the classifier's training validates with and hands back: the training and validation records, the
validation boxes' truth, the classifier's probabilities on them, the score that picks the best epoch (mean AUC),
the metrics a package stores, and :class:`TrainedClassifier`. Shared by the classifier's engine
(:mod:`core.training.classification_engine`) and its endplate head's (:mod:`core.training.endplate_head`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.annotations.model import CLASS_CODES, DISEASES
from core.evaluation.classification import calls_from, classification_metrics
from core.models.classifier import VertebraClassifier
from core.training.classification_data import SliceCache, box_samples
from core.training.datasets import SliceRecord, collect_records, split_by_case


@dataclass
class TrainedClassifier:
    package: Path
    best_epoch: int
    metrics: dict[str, Any]
    thresholds: dict[str, float]
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def train_and_validation(studies: Sequence[Path], validation: Sequence[str | Path], source: str,
                         fraction: float) -> tuple[list[SliceRecord], list[SliceRecord]]:
    """The annotated slices of ``studies``, and those of ``validation`` (or ``fraction`` of the cases held out)."""
    records = collect_records(studies, source)
    if validation:
        return records, collect_records([Path(v) for v in validation], source)
    return split_by_case(records, fraction)


def box_truth(records: Sequence[SliceRecord]) -> np.ndarray:
    """(boxes, 6) labels of every box of ``records``, in ``box_samples`` order."""
    return np.stack([s.labels for s in box_samples(records)]) if records else np.zeros((0, len(CLASS_CODES)))


def predict_records(classifier: VertebraClassifier, records: Sequence[SliceRecord], cache: SliceCache,
                    chunk_slices: int = 8) -> np.ndarray:
    """(boxes, 6) test-time probabilities for every box of ``records``, in ``box_samples`` order."""
    out = []
    for start in range(0, len(records), chunk_slices):
        part = records[start : start + chunk_slices]
        out.extend(classifier.predict([cache.image(r) for r in part], [r.boxes for r in part],
                                      spacings=[cache.spacing(r) for r in part]))
    return np.concatenate(out) if out else np.zeros((0, len(CLASS_CODES)))


def mean_auc(truth: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean AUC over the diseases with both positive and negative boxes (0 when there are none)."""
    metrics = classification_metrics(truth, probabilities, calls_from(probabilities, {c: 0.5 for c in CLASS_CODES}))
    aucs = [metrics["per_class"][d.value]["auc"] for d in DISEASES]
    aucs = [a for a in aucs if a is not None]
    return float(np.mean(aucs)) if aucs else 0.0


def stored_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """The validation metrics without the ROC curves (kept out of the manifest)."""
    per_class = {c: {k: v for k, v in m.items() if k != "roc"} for c, m in metrics["per_class"].items()}
    return {k: v for k, v in metrics.items() if k != "per_class"} | {"per_class": per_class}

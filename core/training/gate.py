"""The validation gate of a retrain: the new model and the active one scored on the same validation records.

- Detector: AP50 at IoU 0.5 over the validation slices (see :mod:`core.evaluation.detection`).
- Classifier: the mean AUC over the diseases with positive and negative boxes in the split, on the annotated boxes
  (so the score does not depend on the detector).

The new model passes when its score is at least the active model's minus ``margin``; without an active model it
passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.annotations.model import DISEASES
from core.evaluation.classification import calls_from, classification_metrics
from core.evaluation.detection import ImageDetections, detection_metrics
from core.training.classification_data import SliceCache, box_samples
from core.training.datasets import SliceRecord


@dataclass(frozen=True)
class GateResult:
    component: str  # "detector" or "classifier"
    metric: str
    new: float
    active: float | None
    margin: float
    passed: bool

    def describe(self) -> str:
        if self.active is None:
            return f"{self.component} {self.metric} {self.new:.3f} (no active model to compare with)"
        verdict = "not worse" if self.passed else "worse"
        return (f"{self.component} {self.metric} {self.new:.3f} against {self.active:.3f} for the active model: "
                f"{verdict} (margin {self.margin:.3f})")


def detector_score(package: Path, records: Sequence[SliceRecord], device: str = "auto") -> float:
    from core.models.detector import VertebraDetector

    detector = VertebraDetector.from_package(package, device=device)
    cache = SliceCache(detector.config.window)
    images = []
    for record in records:
        [found] = detector.detect([cache.image(record)], threshold=0.05)
        images.append(ImageDetections.of(record.key, found.boxes, found.scores, record.boxes))
    return float(detection_metrics(images)["ap50"]) if images else 0.0


def classifier_score(package: Path, records: Sequence[SliceRecord], device: str = "auto") -> float:
    from core.models.classifier import VertebraClassifier
    from core.training.classification_engine import predict_records

    classifier = VertebraClassifier.from_package(package, device=device)
    cache = SliceCache(classifier.config.window)
    probabilities = predict_records(classifier, records, cache)
    truth = np.stack([s.labels for s in box_samples(records)]) if records else np.zeros((0, 6))
    metrics = classification_metrics(truth, probabilities, calls_from(probabilities, classifier.config.thresholds))
    aucs = [metrics["per_class"][d.value]["auc"] for d in DISEASES]
    aucs = [a for a in aucs if a is not None]
    return float(np.mean(aucs)) if aucs else 0.0


def _compare(component: str, metric: str, score: float, active: float | None, margin: float) -> GateResult:
    passed = active is None or score >= active - margin
    return GateResult(component, metric, score, active, margin, passed)


def compare_detectors(new: Path, active: Path | None, records: Sequence[SliceRecord], margin: float,
                      device: str = "auto") -> GateResult:
    active_score = detector_score(active, records, device) if active is not None else None
    return _compare("detector", "AP50", detector_score(new, records, device), active_score, margin)


def compare_classifiers(new: Path, active: Path | None, records: Sequence[SliceRecord], margin: float,
                        device: str = "auto") -> GateResult:
    active_score = classifier_score(active, records, device) if active is not None else None
    return _compare("classifier", "mean AUC", classifier_score(new, records, device), active_score, margin)

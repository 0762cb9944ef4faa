"""``vertebra-review evaluate detection``: compare predicted LabelMe files with annotated ones, and write
``metrics.json`` with the plots."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from core.annotations.geometry import DETECTION_THRESHOLD
from core.annotations.labelme_io import read_labelme
from core.annotations.labelme_paths import check_predictions_folder, labelme_at, labelme_files, no_labelme_files
from core.errors import VertebraReviewError
from core.evaluation.detection import ImageDetections, detection_metrics, precision_recall
from core.evaluation.plots import count_plot, error_histogram_plot, precision_recall_plot
from core.fileio import atomic_write_json

log = logging.getLogger(__name__)


def pair_files(predictions: Path, truth: Path) -> tuple[list[ImageDetections], list[str]]:
    """Every annotated file under ``truth`` with the prediction at the same relative path (none counts as no
    detections). Returns the images and notes about what was missing or unreadable."""
    images: list[ImageDetections] = []
    files, notes = labelme_files(truth)
    if not files:
        raise no_labelme_files(truth, notes)
    check_predictions_folder(predictions)
    for file in files:
        relative = file.relative_to(truth)
        try:
            annotated = read_labelme(file)
            found = labelme_at(predictions, relative)
        except VertebraReviewError as exc:
            notes.append(str(exc))
            continue
        predicted_file = predictions / relative
        boxes, scores = [], []
        if found is not None:
            try:
                predicted = read_labelme(found)
            except VertebraReviewError as exc:
                notes.append(str(exc))
                continue
            boxes = [v.box.as_list() for v in predicted.vertebrae]
            scores = [1.0 if v.score is None else v.score for v in predicted.vertebrae]
        else:
            notes.append(f"{predicted_file}: no prediction (counted as nothing detected)")
        truth_boxes = [v.box.as_list() for v in annotated.vertebrae]
        images.append(ImageDetections.of(str(relative.with_suffix("")), boxes, scores, truth_boxes))
    return images, notes


def write_detection_report(images: Sequence[ImageDetections], report: Path, *, threshold: float = DETECTION_THRESHOLD,
                           extra: dict | None = None) -> dict:
    """``metrics.json``, ``pr_curve.png``, ``counts.png`` and ``errors.png`` in ``report``."""
    metrics = detection_metrics(images, threshold)
    if extra:
        metrics.update(extra)
    curve = precision_recall(images)
    precision_recall_plot(report / "pr_curve.png", [("detector", curve.recall, curve.precision, curve.ap)])
    per_image = metrics["per_image"]
    count_plot(report / "counts.png", [p["annotated"] for p in per_image], [p["detected"] for p in per_image],
               metrics["count_r"])
    error_histogram_plot(report / "errors.png", [p["fp"] for p in per_image], [p["fn"] for p in per_image])
    atomic_write_json(report / "metrics.json", metrics)
    return metrics

"""``vertebra-review evaluate classification``: predicted LabelMe files against annotated ones, per class as in the
paper's Table 3, with ROC curves, confusion matrices, ``metrics.json`` and one self-contained HTML report.

Predicted and annotated vertebrae are paired one to one by the paper's hit rule
(:func:`~core.annotations.geometry.pair_by_iom`: Hungarian assignment on IoM, a pair counts when IoM > 0.5).
Figures are over the paired vertebrae; annotated vertebrae the detector missed and predictions with no annotated
vertebra are counted and reported beside them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.annotations.geometry import HIT_IOM, pair_by_iom
from core.annotations.labelme_io import read_labelme
from core.annotations.labelme_paths import check_predictions_folder, labelme_at, labelme_files, no_labelme_files
from core.annotations.model import CLASS_CODES, DISEASE_NAMES, SliceAnnotation
from core.annotations.targets import label_vector
from core.errors import StudyError, VertebraReviewError
from core.evaluation.classification import SUMMARY_CLASSES, classification_metrics
from core.evaluation.html import html_page, image_tag, table
from core.evaluation.plots import confusion_plot, roc_plot
from core.fileio import atomic_write_together, json_bytes


@dataclass
class PairedBoxes:
    truth: list[np.ndarray] = field(default_factory=list)
    probabilities: list[np.ndarray] = field(default_factory=list)
    called: list[np.ndarray] = field(default_factory=list)
    missed: int = 0
    extra: int = 0
    slices: int = 0
    notes: list[str] = field(default_factory=list)

    def add(self, predicted: SliceAnnotation | None, annotated: SliceAnnotation) -> None:
        self.slices += 1
        truth_boxes = np.array([v.box.as_list() for v in annotated.vertebrae]).reshape(-1, 4)
        if predicted is None or not predicted.vertebrae:
            self.missed += len(truth_boxes)
            return
        boxes = np.array([v.box.as_list() for v in predicted.vertebrae]).reshape(-1, 4)
        pairs = pair_by_iom(boxes, truth_boxes)
        self.missed += len(truth_boxes) - len(pairs)
        self.extra += len(boxes) - len(pairs)
        for r, c in pairs:
            guess = predicted.vertebrae[r]
            self.truth.append(label_vector(annotated.vertebrae[c].diseases))
            self.called.append(label_vector(guess.diseases))
            probs = guess.probabilities or {}
            self.probabilities.append(np.array([float(probs.get(code, np.nan)) for code in CLASS_CODES]))

    def arrays(self) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        shape = (-1, len(CLASS_CODES))
        truth = np.array(self.truth).reshape(shape)
        called = np.array(self.called).reshape(shape)
        probabilities = np.array(self.probabilities).reshape(shape)
        return truth, (None if np.isnan(probabilities).any() or not len(probabilities) else probabilities), called


def pair_files(predictions: Path, truth: Path) -> PairedBoxes:
    files, refused = labelme_files(truth)
    if not files:
        raise no_labelme_files(truth, refused)
    check_predictions_folder(predictions)
    paired = PairedBoxes()
    paired.notes.extend(refused)
    for file in files:
        predicted_file = predictions / file.relative_to(truth)
        try:
            annotated = read_labelme(file)
            found = labelme_at(predictions, file.relative_to(truth))
            predicted = read_labelme(found) if found is not None else None
        except VertebraReviewError as exc:
            paired.notes.append(str(exc))
            continue
        if predicted is None:
            paired.notes.append(f"{predicted_file}: no prediction (its vertebrae count as missed)")
        paired.add(predicted, annotated)
    return paired


def _table3(metrics: dict) -> str:
    header = ["class", "TP", "FP", "FN", "TN", "sensitivity", "specificity", "PPV", "NPV", "F1", "AUC"]
    rows = []
    for code in CLASS_CODES:
        m = metrics["per_class"][code]
        rows.append([f"{code} ({DISEASE_NAMES[code]})", m["tp"], m["fp"], m["fn"], m["tn"], m["sensitivity"],
                     m["specificity"], m["ppv"], m["npv"], m["f1"], m["auc"]])
    summary = metrics["summary"]
    rows.append([f"mean ± SD ({', '.join(SUMMARY_CLASSES)})", "", "", "", "",
                 *[summary[k] for k in ("sensitivity", "specificity", "ppv", "npv", "f1", "auc")]])
    return table(header, rows)


def write_classification_report(paired: PairedBoxes, report: Path, *, title: str = "Classification") -> dict:
    truth, probabilities, called = paired.arrays()
    if not len(truth):
        raise StudyError("no predicted vertebra matches an annotated one: nothing to evaluate", report)
    metrics = classification_metrics(truth, probabilities, called)
    metrics.update({"slices": paired.slices, "missed_vertebrae": paired.missed, "extra_vertebrae": paired.extra,
                    "pairing": f"Hungarian assignment on IoM, pairs with IoM > {HIT_IOM:g}"})
    curves = [(c, m["roc"]["fpr"], m["roc"]["tpr"], m["auc"]) for c, m in metrics["per_class"].items() if m["roc"]]
    images = []
    if curves:
        images.append(("ROC curves", roc_plot(report / "roc.png", curves)))
    images.append(("One-vs-all confusion matrices", confusion_plot(
        report / "confusion.png", {c: metrics["per_class"][c] for c in CLASS_CODES})))
    body = [f"<p>{metrics['boxes']} paired vertebrae on {paired.slices} slices; {paired.missed} annotated vertebrae "
            f"not detected, {paired.extra} detections without an annotated vertebra. A ratio with a zero denominator "
            "is shown as –.</p>", _table3(metrics)]
    body += [f"<h2>{name}</h2>{image_tag(path)}" for name, path in images]
    for m in metrics["per_class"].values():
        m.pop("roc", None)
    atomic_write_together({report / "report.html": html_page(title, body).encode(),
                           report / "metrics.json": json_bytes(metrics, report / "metrics.json")})
    return metrics


def evaluate_paths(predictions: Path, truth: Path, report: Path) -> tuple[dict, Sequence[str]]:
    paired = pair_files(predictions, truth)
    return write_classification_report(paired, report), paired.notes

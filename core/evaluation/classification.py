"""Classification metrics, per class and one-vs-all, laid out like the paper's Table 3.

For each class: the confusion matrix (TP, FP, FN, TN), sensitivity (TP / (TP + FN)), specificity (TN / (TN + FP)),
PPV (TP / (TP + FP)), NPV (TN / (TN + FN)), F1, and the ROC curve with its AUC (scikit-learn). A ratio whose
denominator is zero is reported as null. NORMAL is scored as its own class: a box is called NORMAL when no disease
is called. The paper's summary is the mean ± SD over OVCF, OF, KD and PS (SN is reported on its own).

**Decision thresholds** are chosen per class on the validation split by :func:`choose_thresholds`: the threshold
that maximises F1 (the harmonic mean of sensitivity and PPV), the highest such threshold on ties, and 0.5 for a
class with no positive case in the validation split. F1 rather than Youden's J because the classes are rare: at
80 % normal boxes J favours thresholds that cost many false positives.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_curve, roc_auc_score, roc_curve

from core.annotations.model import CLASS_CODES, DISEASES
from core.evaluation.detection import plain

SUMMARY_CLASSES = ("OVCF", "OF", "KD", "PS")


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def class_metrics(truth: np.ndarray, called: np.ndarray, scores: np.ndarray | None) -> dict[str, Any]:
    """One-vs-all figures for one class: ``truth`` and ``called`` are 0/1 per box, ``scores`` its probabilities."""
    truth = np.asarray(truth, dtype=bool)
    called = np.asarray(called, dtype=bool)
    tn, fp, fn, tp = (int(v) for v in confusion_matrix(truth, called, labels=[False, True]).ravel())
    sensitivity, ppv = _ratio(tp, tp + fn), _ratio(tp, tp + fp)
    f1 = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else None
    figures: dict[str, Any] = {
        "tp": tp, "fp": fp, "fn": fn, "tn": tn, "positives": tp + fn, "n": tp + fp + fn + tn,
        "sensitivity": sensitivity, "specificity": _ratio(tn, tn + fp), "ppv": ppv, "npv": _ratio(tn, tn + fn),
        "f1": f1, "auc": None, "roc": None,
    }
    if scores is not None and 0 < truth.sum() < len(truth):
        figures["auc"] = float(roc_auc_score(truth, scores))
        fpr, tpr, _ = roc_curve(truth, scores)
        figures["roc"] = {"fpr": fpr.round(5).tolist(), "tpr": tpr.round(5).tolist()}
    return figures


def classification_metrics(truth: np.ndarray, probabilities: np.ndarray | None, called: np.ndarray) -> dict[str, Any]:
    """Every class's figures and the paper's summary. ``truth`` and ``called`` are (n, 6) 0/1 arrays in CLASS_CODES
    order (NORMAL last); ``probabilities`` (n, 6) or None when only the calls are known."""
    truth = np.asarray(truth).reshape(-1, len(CLASS_CODES))
    called = np.asarray(called).reshape(-1, len(CLASS_CODES))
    per_class = {}
    for i, code in enumerate(CLASS_CODES):
        scores = None if probabilities is None else np.asarray(probabilities)[:, i]
        per_class[code] = class_metrics(truth[:, i], called[:, i], scores)
    summary = {}
    for key in ("sensitivity", "specificity", "ppv", "npv", "f1", "auc"):
        values = [per_class[c][key] for c in SUMMARY_CLASSES if per_class[c][key] is not None]
        summary[key] = {"mean": float(np.mean(values)) if values else None,
                        "sd": float(np.std(values, ddof=1)) if len(values) > 1 else None, "classes": len(values)}
    return plain({"boxes": len(truth), "per_class": per_class, "summary": summary,
                  "summary_classes": list(SUMMARY_CLASSES)})


def choose_thresholds(truth: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """Per-class decision thresholds on a validation split (the rule is in the module's description)."""
    truth = np.asarray(truth).reshape(-1, len(CLASS_CODES))
    probabilities = np.asarray(probabilities).reshape(-1, len(CLASS_CODES))
    chosen = {}
    for i, code in enumerate(CLASS_CODES):
        positives = truth[:, i] > 0.5
        if positives.sum() == 0 or positives.all():
            chosen[code] = 0.5
            continue
        precision, recall, thresholds = precision_recall_curve(positives, probabilities[:, i])
        precision, recall = precision[:-1], recall[:-1]
        with np.errstate(invalid="ignore", divide="ignore"):
            f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
        best = np.flatnonzero(f1 >= f1.max() - 1e-12)
        chosen[code] = float(thresholds[best].max())
    return chosen


def calls_from(probabilities: np.ndarray, thresholds: Mapping[str, float]) -> np.ndarray:
    """(n, 6) 0/1 calls: each disease at its threshold; NORMAL when no disease is called."""
    probabilities = np.asarray(probabilities).reshape(-1, len(CLASS_CODES))
    calls = np.zeros(probabilities.shape, dtype=np.int8)
    for i, disease in enumerate(DISEASES):
        calls[:, i] = probabilities[:, i] >= thresholds[disease.value]
    calls[:, -1] = calls[:, : len(DISEASES)].sum(axis=1) == 0
    return calls

"""Classification metrics, per class and one-vs-all, laid out like the paper's Table 3.

For each class: the confusion matrix (TP, FP, FN, TN), sensitivity (TP / (TP + FN)), specificity (TN / (TN + FP)),
PPV (TP / (TP + FP)), NPV (TN / (TN + FN)), F1, and the ROC curve with its AUC (scikit-learn). A ratio whose
denominator is zero is reported as null. NORMAL is scored as its own class: a box is called NORMAL when no disease
is called. The paper's summary is the mean ± SD over OVCF, OF, KD and PS (SN is reported on its own).

**Decision thresholds** are chosen per class on the validation split by :func:`choose_thresholds`: the threshold
with the highest sensitivity among those that keep the validation specificity at 0.99 or more (at most one normal
vertebra in a hundred falsely flagged with that class; the paper's classifier ran at 0.986 to 0.999 per class), the
highest such threshold on ties. The threshold is thus set by the negative boxes, thousands of them, not by the
handful of positive ones that a rare class has: a best-F1 rule put Kummell's disease, seven lesions in the
validation split, at 0.93 and missed half of it on held-out studies, where this rule finds 79 % at the same
specificity. A class with at least 5 positive cases whose validation AUC is below 0.6 has not been learnt: its
threshold is 1.0, so it is never called, and :func:`unlearnt_classes` names it. A class with no positive case in the
validation split gets 0.5. Where no threshold reaches the specificity floor (a validation split too small for it),
the threshold with the best F1 is taken instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix, roc_auc_score, roc_curve

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


MIN_SPECIFICITY = 0.99
MIN_AUC = 0.6
MIN_POSITIVES_FOR_AUC = 5
NOT_CALLED = 1.0


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
        if positives.sum() >= MIN_POSITIVES_FOR_AUC and roc_auc_score(positives, probabilities[:, i]) < MIN_AUC:
            chosen[code] = NOT_CALLED
            continue
        fpr, tpr, thresholds = roc_curve(positives, probabilities[:, i], drop_intermediate=False)
        fpr, tpr, thresholds = fpr[1:], tpr[1:], thresholds[1:]  # the first point is "call nothing" (+inf)
        allowed = 1.0 - fpr >= MIN_SPECIFICITY
        if allowed.any():
            score = np.where(allowed, tpr, -1.0)
        else:
            true_positives, false_positives = tpr * positives.sum(), fpr * (~positives).sum()
            score = 2 * true_positives / (2 * true_positives + false_positives + (positives.sum() - true_positives))
        best = np.flatnonzero(score >= score.max() - 1e-12)
        chosen[code] = float(thresholds[best].max())
    return chosen


def unlearnt_classes(thresholds: Mapping[str, float]) -> list[str]:
    """The classes that :func:`choose_thresholds` found not learnt (never called)."""
    return [code for code, value in thresholds.items() if value >= NOT_CALLED and code != "NORMAL"]


def calls_from(probabilities: np.ndarray, thresholds: Mapping[str, float]) -> np.ndarray:
    """(n, 6) 0/1 calls: each disease at its threshold; NORMAL when no disease is called."""
    probabilities = np.asarray(probabilities).reshape(-1, len(CLASS_CODES))
    calls = np.zeros(probabilities.shape, dtype=np.int8)
    for i, disease in enumerate(DISEASES):
        calls[:, i] = probabilities[:, i] >= thresholds[disease.value]
    calls[:, -1] = calls[:, : len(DISEASES)].sum(axis=1) == 0
    return calls

"""Classification metrics against hand-computed confusion matrices and scikit-learn; the threshold rule."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

from core.evaluation.classification import (
    calls_from,
    choose_thresholds,
    class_metrics,
    classification_metrics,
    unlearnt_classes,
)


def test_hand_computed_confusion_matrix():
    truth = [1, 1, 1, 0, 0, 0, 0, 0, 0, 0]
    called = [1, 1, 0, 1, 0, 0, 0, 0, 0, 0]
    m = class_metrics(np.array(truth), np.array(called), None)
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (2, 1, 1, 6)
    assert m["sensitivity"] == pytest.approx(2 / 3)
    assert m["specificity"] == pytest.approx(6 / 7)
    assert m["ppv"] == pytest.approx(2 / 3)
    assert m["npv"] == pytest.approx(6 / 7)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["auc"] is None


def test_agrees_with_scikit_learn():
    rng = np.random.default_rng(0)
    truth = rng.random((200, 6)) < 0.2
    probabilities = np.clip(truth * 0.5 + rng.random((200, 6)) * 0.6, 0, 1)
    called = (probabilities >= 0.5).astype(int)
    metrics = classification_metrics(truth, probabilities, called)
    for i, code in enumerate(["OVCF", "OF", "SN", "KD", "PS", "NORMAL"]):
        m = metrics["per_class"][code]
        assert m["sensitivity"] == pytest.approx(recall_score(truth[:, i], called[:, i]))
        assert m["ppv"] == pytest.approx(precision_score(truth[:, i], called[:, i]))
        assert m["f1"] == pytest.approx(f1_score(truth[:, i], called[:, i]))
        assert m["specificity"] == pytest.approx(recall_score(~truth[:, i], 1 - called[:, i]))
        assert m["auc"] == pytest.approx(roc_auc_score(truth[:, i], probabilities[:, i]))
    senses = [metrics["per_class"][c]["sensitivity"] for c in ("OVCF", "OF", "KD", "PS")]
    assert metrics["summary"]["sensitivity"]["mean"] == pytest.approx(np.mean(senses))
    assert metrics["summary"]["sensitivity"]["sd"] == pytest.approx(np.std(senses, ddof=1))


def test_zero_denominators_are_null_not_errors():
    m = class_metrics(np.zeros(5), np.zeros(5), np.linspace(0, 1, 5))
    assert m["sensitivity"] is None and m["ppv"] is None and m["f1"] is None and m["auc"] is None
    assert m["specificity"] == 1.0


def test_thresholds_maximise_f1_and_prefer_the_higher_one():
    truth = np.zeros((6, 6))
    truth[:, 0] = [1, 1, 0, 0, 0, 0]
    probabilities = np.full((6, 6), 0.1)
    probabilities[:, 0] = [0.9, 0.8, 0.7, 0.3, 0.2, 0.1]
    chosen = choose_thresholds(truth, probabilities)
    assert chosen["OVCF"] == pytest.approx(0.8)  # both positives caught and nothing else: F1 = 1
    assert chosen["OF"] == 0.5  # no positive case: the default
    truth[:, 1] = [1, 0, 0, 0, 0, 0]
    probabilities[:, 1] = [0.6, 0.6, 0.1, 0.1, 0.1, 0.1]  # a tie at 0.6: F1 2/3 is the best possible
    assert choose_thresholds(truth, probabilities)["OF"] == pytest.approx(0.6)


def test_thresholds_keep_specificity_and_never_call_an_unlearnt_class():
    rng = np.random.default_rng(0)
    truth = np.zeros((400, 6))
    truth[:20, 2] = 1  # 20 Schmorl's nodes among 400 boxes
    truth[:40, 0] = 1
    probabilities = np.full((400, 6), 0.05)
    probabilities[:, 2] = rng.uniform(0.05, 0.15, 400)  # SN not learnt: noise, whatever the truth
    probabilities[:, 0] = np.where(truth[:, 0] > 0, rng.uniform(0.3, 0.9, 400), rng.uniform(0.0, 0.6, 400))
    chosen = choose_thresholds(truth, probabilities)
    assert chosen["SN"] == 1.0 and unlearnt_classes(chosen) == ["SN"]
    assert calls_from(probabilities, chosen)[:, 2].sum() == 0
    ovcf = probabilities[:, 0] >= chosen["OVCF"]
    specificity = 1 - ovcf[40:].mean()
    assert specificity >= 0.95 and ovcf[:40].mean() > 0.3  # the floor holds, and OVCF is still found


def test_calls_normal_when_no_disease_reaches_its_threshold():
    thresholds = {"OVCF": 0.5, "OF": 0.3, "SN": 0.5, "KD": 0.5, "PS": 0.5, "NORMAL": 0.5}
    calls = calls_from(np.array([[0.4, 0.2, 0, 0, 0, 0.9], [0.6, 0.35, 0, 0, 0, 0.1]]), thresholds)
    assert calls.tolist() == [[0, 0, 0, 0, 0, 1], [1, 1, 0, 0, 0, 0]]

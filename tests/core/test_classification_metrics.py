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


def test_thresholds_take_the_best_sensitivity_at_a_specificity_of_099_and_prefer_the_higher_one():
    truth = np.zeros((210, 6))
    truth[:10, 0] = 1  # 10 OVCF among 210 boxes: at most 2 of the 200 normal ones may be flagged
    probabilities = np.full((210, 6), 0.1)
    probabilities[:10, 0] = [0.95, 0.9, 0.85, 0.79, 0.78, 0.77, 0.76, 0.75, 0.74, 0.7]
    probabilities[10:, 0] = np.linspace(0.0, 0.8, 200)  # the highest three: 0.8, 0.796, 0.792
    chosen = choose_thresholds(truth, probabilities)
    # 0.85, 0.8 and 0.796 all find 3 of 10 at 2 or fewer false calls; 0.792 would be a third: the highest wins.
    assert chosen["OVCF"] == pytest.approx(0.85)
    calls = probabilities[:, 0] >= chosen["OVCF"]
    assert 1 - calls[10:].mean() >= 0.99
    assert chosen["OF"] == 0.5  # no positive case: the default


def test_a_split_too_small_for_the_floor_falls_back_to_the_best_f1():
    truth = np.zeros((6, 6))
    truth[:, 1] = [1, 0, 0, 0, 0, 0]
    probabilities = np.full((6, 6), 0.1)
    probabilities[:, 1] = [0.6, 0.6, 0.1, 0.1, 0.1, 0.1]  # no threshold flags fewer than 1 of the 5 normal boxes
    assert choose_thresholds(truth, probabilities)["OF"] == pytest.approx(0.6)  # F1 2/3, the best possible


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
    assert specificity >= 0.99 and ovcf[:40].mean() > 0.3  # the floor holds, and OVCF is still found


def test_calls_normal_when_no_disease_reaches_its_threshold():
    thresholds = {"OVCF": 0.5, "OF": 0.3, "SN": 0.5, "KD": 0.5, "PS": 0.5, "NORMAL": 0.5}
    calls = calls_from(np.array([[0.4, 0.2, 0, 0, 0, 0.9], [0.6, 0.35, 0, 0, 0, 0.1]]), thresholds)
    assert calls.tolist() == [[0, 0, 0, 0, 0, 1], [1, 1, 0, 0, 0, 0]]

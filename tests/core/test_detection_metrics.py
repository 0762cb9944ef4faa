"""Detection metrics against hand-computed cases (and scikit-learn where it applies)."""

from __future__ import annotations

import numpy as np
import pytest

from core.evaluation.detection import (
    ImageDetections,
    coco_ap,
    detection_metrics,
    iom_hits,
    precision_recall,
)

A = [0, 0, 10, 10]
B = [20, 0, 30, 10]
C = [40, 0, 50, 10]


def test_perfect_detection_has_ap_one_and_no_errors():
    images = [ImageDetections.of("a", [A, B], [0.9, 0.8], [A, B]), ImageDetections.of("b", [C], [0.95], [C])]
    metrics = detection_metrics(images)
    assert metrics["ap50"] == pytest.approx(1.0)
    assert metrics["ap50_95"] == pytest.approx(1.0)
    assert (metrics["hits"], metrics["fp"], metrics["fn"]) == (3, 0, 0)
    assert metrics["fp_rate"] == 0 and metrics["fn_rate"] == 0


def test_ap_by_hand_with_a_false_positive_ranked_second_and_a_missed_box():
    # Three annotated boxes; detections by score: A (TP), stray (FP), B (TP); C is never found.
    stray = [100, 100, 110, 110]
    image = ImageDetections.of("x", [A, stray, B], [0.9, 0.8, 0.7], [A, B, C])
    curve = precision_recall([image])
    # Steps: recall 1/3 at precision 1, recall 2/3 at precision 2/3: AP = 1/3 * 1 + 1/3 * 2/3 = 5/9.
    assert curve.ap == pytest.approx(5 / 9)
    assert np.allclose(curve.recall, [1 / 3, 1 / 3, 2 / 3])
    assert np.allclose(curve.precision, [1, 1 / 2, 2 / 3])


def test_ap_matches_scikit_learn_when_every_box_is_found():
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(0)
    truth = [[x, 0, x + 10, 10] for x in range(0, 200, 20)]
    boxes = truth + [[x + 5, 50, x + 15, 60] for x in range(0, 100, 20)]
    scores = rng.random(len(boxes))
    curve = precision_recall([ImageDetections.of("x", boxes, scores, truth)])
    labels = np.array([1] * len(truth) + [0] * 5)
    assert curve.ap == pytest.approx(average_precision_score(labels, scores))


def test_duplicate_detections_of_one_box_count_once():
    image = ImageDetections.of("x", [A, A], [0.9, 0.8], [A])
    curve = precision_recall([image])
    assert curve.ap == pytest.approx(1.0)  # the duplicate ranks after the only true positive
    counts = iom_hits(image, threshold=0.5)
    assert (counts.hits, counts.fp, counts.fn) == (1, 1, 0)


def test_iou_threshold_decides_true_positives():
    shifted = [0, 0, 10, 16]  # IoU with A = 100 / 160 = 0.625
    image = ImageDetections.of("x", [shifted], [0.9], [A])
    assert precision_recall([image], 0.6).ap == pytest.approx(1.0)
    assert precision_recall([image], 0.65).ap == 0.0
    # COCO AP50:95 counts it at 0.50, 0.55 and 0.60 of the ten thresholds.
    assert coco_ap([image]) == pytest.approx(0.3)


def test_paper_iom_hit_rule_and_threshold():
    inside = [2, 2, 8, 8]  # IoU with A = 0.36, IoM = 1.0: a hit by the paper's rule
    beside = [8, 0, 18, 10]  # IoM = 20 / 100 = 0.2: not a hit
    image = ImageDetections.of("x", [inside, beside, C], [0.9, 0.8, 0.5], [A, B])
    counts = iom_hits(image, threshold=0.75)  # C is below the threshold and is not counted
    assert (counts.hits, counts.fp, counts.fn, counts.detected, counts.annotated) == (1, 1, 1, 2, 2)


def test_one_to_one_assignment_maximises_hits():
    # One tall detection covers two annotated boxes; only one may be its hit.
    tall = [0, 0, 10, 30]
    top, bottom = [0, 0, 10, 10], [0, 20, 10, 30]
    counts = iom_hits(ImageDetections.of("x", [tall], [0.9], [top, bottom]))
    assert (counts.hits, counts.fp, counts.fn) == (1, 0, 1)


def test_rates_and_count_correlation():
    images = [
        ImageDetections.of("a", [A, B], [0.9, 0.9], [A, B]),
        ImageDetections.of("b", [A], [0.9], [A, B]),  # one missed
        ImageDetections.of("c", [A, B, C, [60, 0, 70, 10]], [0.9] * 4, [A, B, C]),  # one extra
    ]
    metrics = detection_metrics(images)
    assert (metrics["hits"], metrics["fp"], metrics["fn"]) == (6, 1, 1)
    assert metrics["fp_rate"] == pytest.approx(1 / 7)  # FP / detected
    assert metrics["fn_rate"] == pytest.approx(1 / 7)  # FN / annotated
    assert metrics["count_r"] == pytest.approx(np.corrcoef([2, 1, 4], [2, 2, 3])[0, 1])
    assert [p["fn"] for p in metrics["per_image"]] == [0, 1, 0]


def test_no_annotations_or_no_detections():
    assert precision_recall([ImageDetections.of("x", [], [], [A])]).ap == 0.0
    metrics = detection_metrics([ImageDetections.of("x", [A], [0.9], [])])
    assert metrics["ap50"] == 0.0 and metrics["fp"] == 1 and metrics["count_r"] is None
    with pytest.raises(ValueError, match="scores"):
        ImageDetections.of("x", [A], [0.1, 0.2], [])


def test_metrics_are_plain_python_values_that_a_weights_only_checkpoint_takes():
    import io

    import torch

    images = [ImageDetections.of("a", [A, B], [0.9, 0.3], [A, C]), ImageDetections.of("b", [C], [0.8], [C])]
    metrics = detection_metrics(images)

    def walk(value):
        if isinstance(value, dict):
            return all(walk(v) for v in value.values())
        if isinstance(value, list):
            return all(walk(v) for v in value)
        return type(value) in (int, float, str, bool, type(None))

    assert walk(metrics)
    buffer = io.BytesIO()
    torch.save({"history": [metrics]}, buffer)
    buffer.seek(0)
    assert torch.load(buffer, weights_only=True)["history"][0]["ap50"] == metrics["ap50"]

"""The real-data evaluation script (``tests/benchmarks/eval_real.py``) at its smallest: on a folder laid out like the
shared real data but holding only the bundled DICOM series with its T11/T12 labels, with the bundled demo models."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.bundled_models import BUNDLED_ID, BUNDLED_SET

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow  # imports a real series and runs both models on every slab


def test_eval_real_on_the_bundled_series(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (real / "ct_dicom_series").symlink_to(REPO / "resources" / "sample" / "ct_dicom_series")
    command = [sys.executable, str(REPO / "tests" / "benchmarks" / "eval_real.py"),
               str(BUNDLED_SET), str(real), "--json",
               "--pictures", str(tmp_path / "pictures"), "--slabs", "3", "--scores", "0.3"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert list(result["patients"]) == ["T11/T12 series"]  # the sources that are not there are passed over
    assert "1 real CT volumes" in result["note"] and result["demo"] is True
    figures = result["all"]
    assert figures == result["patients"]["T11/T12 series"]
    assert figures["slices"] == 3 and figures["bodies"] >= 1
    assert 0 <= figures["recall"] <= 1 and figures["detections"] >= 0
    assert set(result["recall_per_level"]) <= {"T11", "T12"}
    # the T11/T12 series' bodies are all within T5-L1: the target's figure is the whole one here
    assert figures["unfractured_hits_t5_l1"] == figures["unfractured_hits"]
    assert figures["no_disease_on_unfractured_t5_l1"] == figures["no_disease_on_unfractured"]
    calls = figures["disease_calls_on_unfractured"]
    assert 0 <= figures["of_them_marked_unsure"] <= calls <= figures["unfractured_hits"]
    # levels from one level a reader sets: every hit with a true level is scored, and a hit anchors itself
    hits = round(figures["recall"] * figures["bodies"])
    assert figures["levels_scored"] == hits
    if hits:
        assert 0 < figures["set_level_accuracy"] <= 1 and 0 < figures["one_level_accuracy"] <= 1
    # the detector alone at a lower score keeps at least the boxes kept at 0.75, so it finds at least as many
    lower = figures["at_scores"]["0.3"]
    assert lower["recall"] >= figures["recall"] and 0 <= lower["false_detections"] <= 1
    with Image.open(tmp_path / "pictures" / "T11-T12_series.png") as sheet:  # three slabs side by side
        assert sheet.mode == "RGB" and sheet.height == 480 and sheet.width > 3 * 50
    # the printed form names the model and says how few patients stand behind it
    lines = _load_script().report_lines(result)
    assert f"{BUNDLED_ID} (demo)" in lines[0] and "far too few patients" in lines[0]
    assert lines[1].strip().startswith("T11/T12 series: recall") and lines[-1].startswith("recall per level")
    assert lines[1].endswith(f"{figures['of_them_marked_unsure']} of its {figures['disease_calls_on_unfractured']} "
                             "disease calls there marked unsure)")
    assert "with a level set by a reader: set level" in lines[2]
    assert "detector alone at score >= 0.3: recall" in lines[3]


def test_eval_real_measures_a_patient_given_by_name_and_refuses_a_run_of_nothing(tmp_path):
    """--source NAME CT LABELS (a held-back patient, a site's own scan) replaces the shared data's volumes; a folder
    that holds none of the volumes is an error, not figures of nothing."""
    series = REPO / "resources" / "sample" / "ct_dicom_series"
    script = str(REPO / "tests" / "benchmarks" / "eval_real.py")
    done = subprocess.run([sys.executable, script, str(BUNDLED_SET), str(tmp_path), "--json", "--slabs", "1",
                           "--source", "site patient 1", str(series), str(series / "labels_totalsegmentator.nii.gz"),
                           "--scheme", "totalsegmentator"],
                          capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert list(result["patients"]) == ["site patient 1"] and result["all"]["slices"] == 1
    assert result["all"]["bodies"] >= 1 and set(result["recall_per_level"]) <= {"T11", "T12"}
    empty = subprocess.run([sys.executable, script, str(BUNDLED_SET), str(tmp_path)], capture_output=True, text=True,
                           timeout=120)
    assert empty.returncode != 0 and "none of the CT volumes is there" in empty.stderr


def _load_script():
    spec = importlib.util.spec_from_file_location("eval_real", REPO / "tests" / "benchmarks" / "eval_real.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_disease_calls_on_unfractured_bodies_are_counted_with_those_the_app_marks_unsure():
    from collections import Counter

    from core.annotations.model import Box, Disease, SliceAnnotation, Vertebra

    thresholds = {"OVCF": 0.3, "OF": 0.3, "SN": 0.5, "KD": 0.5, "PS": 0.5, "NORMAL": 0.5}
    sure = {"OVCF": 0.95, "OF": 0.01, "SN": 0.01, "KD": 0.01, "PS": 0.01, "NORMAL": 0.02}
    boxes = [Box(10, 10, 60, 50), Box(10, 60, 60, 100), Box(10, 110, 60, 150), Box(10, 160, 60, 200)]
    truth = SliceAnnotation(image_width=100, image_height=200, vertebrae=tuple(
        Vertebra(box, level=level, genant=genant, source="reader")
        for box, level, genant in zip(boxes, ("T8", "T9", "T10", "T11"), (0, None, 0, 2), strict=True)))
    called = [
        Vertebra(boxes[0], frozenset({Disease.OVCF}), sure, score=0.99),  # a sure call, well inside: not unsure
        Vertebra(boxes[1], frozenset(), {**sure, "OVCF": 0.05, "NORMAL": 0.9}, score=0.99),  # normal
        Vertebra(boxes[2], frozenset({Disease.OVCF}), {**sure, "OVCF": 0.35}, score=0.99),  # near its threshold
        Vertebra(boxes[3], frozenset({Disease.OVCF}), sure, score=0.99),  # a fractured body: not counted
    ]
    predicted = SliceAnnotation(image_width=100, image_height=200, vertebrae=tuple(called), thresholds=thresholds)
    counts: Counter = Counter()
    _load_script()._slice_figures(truth, predicted, counts, {})
    assert counts["unfractured"] == 3 and counts["called normal"] == 1
    assert counts["called, unsure"] == 1  # the call near its threshold
    at_edge = SliceAnnotation(image_width=100, image_height=200, thresholds=thresholds, vertebrae=(
        Vertebra(Box(10, 10, 60, 50), frozenset({Disease.OVCF}), sure, score=0.99),
        Vertebra(Box(10, 60, 60, 100), frozenset(), {**sure, "OVCF": 0.05, "NORMAL": 0.9}, score=0.99),
        Vertebra(Box(10, 110, 60, 150), frozenset({Disease.OVCF}), sure, score=0.99),
        Vertebra(Box(10, 160, 60, 200), frozenset({Disease.OVCF}), sure, score=0.99)))
    edge_truth = SliceAnnotation(image_width=100, image_height=200, vertebrae=tuple(
        Vertebra(box, level=level, genant=0, source="reader")
        for box, level in zip(boxes, ("T8", "T9", "T10", "T11"), strict=True)))
    counts = Counter()
    _load_script()._slice_figures(edge_truth, at_edge, counts, {})
    assert counts["unfractured"] == 4 and counts["called, unsure"] == 1  # the sure call on the body at the bottom
    summary = _load_script().summary(counts)
    assert summary["disease_calls_on_unfractured"] == 3 and summary["of_them_marked_unsure"] == 1

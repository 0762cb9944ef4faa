"""``train smoothing``: a classifier package copied to smooth each slice before its patches are cut, its weights kept
and its thresholds chosen again on validation studies; and what it refuses."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.evaluation.classification import choose_thresholds
from core.models.classifier import VertebraClassifier
from core.models.package import read_weights
from core.training.classification_data import SliceCache
from core.training.classification_validation import box_truth, predict_records
from core.training.datasets import collect_records
from desktop.cli import main
from tests.core.conftest import make_study

pytestmark = pytest.mark.slow  # uses the tiny trained model set


def _classifier(study: Path) -> Path:
    return study / "models" / "tiny-v1" / "classifier"


def _same_weights_and_rule_thresholds(source: Path, out: Path, study: Path) -> VertebraClassifier:
    """The copy at ``out`` has ``source``'s weights and SN threshold, and the other thresholds of the rule on the
    study's boxes scored as the copy sees them; returns the copy, loaded."""
    before, after = read_weights(source), read_weights(out)
    assert before.keys() == after.keys() and all(np.array_equal(before[k], after[k]) for k in before)
    classifier = VertebraClassifier.from_package(out, device="cpu")
    records = collect_records([study], "consensus")
    expected = choose_thresholds(box_truth(records),
                                 predict_records(classifier, records, SliceCache(classifier.config.window)))
    thresholds = json.loads((out / "manifest.json").read_text())["architecture"]["thresholds"]
    assert thresholds["SN"] == json.loads((source / "manifest.json").read_text())["architecture"]["thresholds"]["SN"]
    assert all(thresholds[c] == pytest.approx(expected[c]) for c in ("OVCF", "OF", "KD", "PS", "NORMAL"))
    return classifier


def test_the_copy_smooths_keeps_the_weights_and_chooses_its_thresholds_on_the_smoothed_boxes(tiny_model_study,
                                                                                             tmp_path, capsys):
    source = _classifier(tiny_model_study)
    parent = json.loads((source / "manifest.json").read_text())
    out = tmp_path / "smooth"
    assert main(["train", "smoothing", str(source), "--sd", "1.2", "--validation", str(tiny_model_study),
                 "--out", str(out), "--device", "cpu"]) == 0
    assert "smoothed by 1.2 px" in capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["architecture"]["smoothing"] == 1.2 and manifest["parent"] == parent["id"]
    assert manifest["training"]["smoothing_set"]["thresholds_before"] == parent["architecture"]["thresholds"]
    # The thresholds are those of the rule on the validation boxes scored with the smoothing; SN's is the parent's.
    classifier = _same_weights_and_rule_thresholds(source, out, tiny_model_study)
    assert classifier.config.smoothing == 1.2


def test_bad_requests_are_refused_with_the_reason_and_nothing_written(tiny_model_study, tmp_path, capsys):
    source = _classifier(tiny_model_study)
    detector = tiny_model_study / "models" / "tiny-v1" / "detector"
    empty = make_study(tmp_path / "empty").root  # slices, no annotations
    taken = tmp_path / "taken"
    taken.mkdir()
    cases = [
        (["--sd", "4"], str(source), "smoothing is a Gaussian SD from 0 to 3.0 pixels, not 4.0"),
        (["--sd", "-1"], str(source), "smoothing is a Gaussian SD from 0 to 3.0 pixels, not -1.0"),
        (["--sd", "1", "--out", str(taken)], str(source), "needs a new folder"),
        (["--sd", "1", "--validation", str(empty)], str(source), "no annotated vertebrae"),
        (["--sd", "1"], str(detector), "classifier"),
        (["--sd", "1"], str(tmp_path / "nowhere"), "nowhere"),
    ]
    for extra, package, message in cases:
        arguments = ["train", "smoothing", package, "--validation", str(tiny_model_study), "--out",
                     str(tmp_path / "new"), "--device", "cpu"]
        for flag in ("--out", "--validation"):  # a case's own --out or --validation replaces the default one
            if flag in extra:
                position = arguments.index(flag)
                del arguments[position : position + 2]
        capsys.readouterr()
        assert main(arguments + extra) != 0, extra
        err = capsys.readouterr().err
        assert message in err and "internal error" not in err and "Traceback" not in err, (extra, err)
        assert not (tmp_path / "new").exists()
    assert not any(taken.iterdir())


def test_train_spacing_copies_the_classifier_to_resample_each_slice_and_chooses_its_thresholds(tiny_model_study,
                                                                                              tmp_path, capsys):
    """``train spacing``: the copy's main network sees each slice at the reference pixel size; its weights and SN's
    threshold are the parent's, the other thresholds chosen on the validation boxes scored so; out of range, refused."""
    source = _classifier(tiny_model_study)
    parent = json.loads((source / "manifest.json").read_text())
    out = tmp_path / "spacing"
    assert main(["train", "spacing", str(source), "--mm", "0.5", "--validation", str(tiny_model_study),
                 "--out", str(out), "--device", "cpu"]) == 0
    assert "resampled to 0.5 mm pixels" in capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["architecture"]["spacing_mm"] == 0.5 and manifest["parent"] == parent["id"]
    assert manifest["architecture"]["smoothing"] == parent["architecture"].get("smoothing", 0.0)  # kept
    assert manifest["training"]["view_set"]["spacing_mm"] == 0.5
    records = collect_records([tiny_model_study], "consensus")
    assert SliceCache().spacing(records[0]) is not None  # the phantom's DICOM slices carry their spacing
    assert _same_weights_and_rule_thresholds(source, out, tiny_model_study).config.spacing_mm == 0.5
    for bad in ("0.1", "3", "nan"):
        capsys.readouterr()
        assert main(["train", "spacing", str(source), "--mm", bad, "--validation", str(tiny_model_study),
                     "--out", str(tmp_path / "bad"), "--device", "cpu"]) != 0
        assert "reference pixel spacing is 0 (off) or from 0.2 to 2.0 mm" in capsys.readouterr().err
        assert not (tmp_path / "bad").exists()

"""The model commands end to end on a tiny phantom study: train, detect, diagnose, evaluate, report, models."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from desktop.cli import main
from tests.e2e.test_cli import vr

pytestmark = pytest.mark.slow  # trains models and runs them from the command line


@pytest.fixture()
def study(tiny_model_study, tmp_path) -> Path:
    copy = tmp_path / "study"
    shutil.copytree(tiny_model_study, copy)
    return copy


def test_train_detector_and_classifier_with_progress_and_a_summary(study, tmp_path, capsys):
    assert main(["train", "detector", str(study), "--out", str(tmp_path / "m"), "--preset", "cpu", "--epochs", "1",
                 "--input-size", "128", "--precision", "fp32", "--model-id", "d", "--fpn-channels", "64",
                 "--box-head", "128", "--workers", "1", "--test-views", "2"]) == 0
    out = capsys.readouterr()
    assert "best epoch 1: AP50" in out.out and "validate 1/1" in out.err
    manifest = json.loads((tmp_path / "m" / "d" / "manifest.json").read_text())
    assert manifest["architecture"]["fpn_channels"] == 64 and manifest["architecture"]["box_representation"] == 128
    assert manifest["architecture"]["test_views"] == 2  # the package keeps the views asked for
    assert manifest["training"]["settings"]["workers"] == 1  # the slices loaded by a data-loader process
    assert main(["train", "classifier", str(study), "--out", str(tmp_path / "m"), "--preset", "cpu", "--epochs",
                 "1", "--input-size", "64", "--precision", "fp32", "--model-id", "c", "--demo", "--no-fit",
                 "--context", "0.1"]) == 0
    out = capsys.readouterr().out
    assert "thresholds: OVCF" in out
    manifest = json.loads((tmp_path / "m" / "c" / "manifest.json").read_text())
    assert manifest["demo"] and manifest["weights_dtype"] == "float16" and manifest["kind"] == "classifier"
    patch = manifest["architecture"]["patch"]
    assert patch["fit"] is False and patch["context"] == 0.1 and patch["size"] == 64


def test_detect_then_evaluate_detection_writes_metrics_and_plots(study, tmp_path, capsys):
    model = study / "models" / "tiny-v1" / "detector"
    assert main(["detect", str(study), "--model", str(model), "--out", str(tmp_path / "pred"), "--threshold",
                 "0.05", "--precision", "fp32", "--views", "2"]) == 0
    assert (tmp_path / "pred" / "case-0001" / "s001.json").is_file()
    assert main(["evaluate", "detection", str(tmp_path / "pred"), str(study / "consensus"), "--report",
                 str(tmp_path / "report")]) == 0
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    for key in ("ap50", "fp_rate", "fn_rate", "hits", "fp", "fn", "count_r", "ap50_95"):
        assert key in metrics
    assert metrics["annotated"] > 0 and metrics["images"] == 6
    for plot in ("pr_curve.png", "counts.png", "errors.png"):
        assert (tmp_path / "report" / plot).read_bytes()[:4] == b"\x89PNG"


def test_diagnose_resumes_and_report_summarises_per_patient(study, tmp_path, capsys):
    args = ["diagnose", str(study), "--models", str(study / "models"), "--out", str(tmp_path / "pred"),
            "--threshold", "0.0", "--precision", "fp32"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert "demo model" in first and "6 slices" in first
    assert main(args) == 0
    assert "6 slices already done were skipped" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "pred"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.split("\nsummary: ")[0])
    assert [c["case"] for c in summary["cases"]] == ["case-0001", "case-0002", "case-0003"]
    assert all(c["slices"] == 2 for c in summary["cases"])
    assert (tmp_path / "pred" / "summary.html").is_file()


def test_evaluate_classification_on_known_predictions(study, tmp_path, capsys):
    """Predictions copied from the truth, with one OVCF vertebra called NORMAL: OVCF sensitivity drops by one box."""
    from core.annotations.labelme_io import read_labelme, write_labelme
    from core.annotations.model import Disease

    truth = study / "consensus"
    flipped = None
    ovcf = 0
    for file in sorted(truth.rglob("*.json")):
        annotation = read_labelme(file)
        vertebrae = []
        for v in annotation.vertebrae:
            ovcf += Disease.OVCF in v.diseases
            if flipped is None and Disease.OVCF in v.diseases:
                flipped, v = file, v.with_changes(diseases=frozenset())
            probabilities = {d.value: (0.9 if d in v.diseases else 0.1) for d in Disease} | {"NORMAL": 0.5}
            vertebrae.append(v.with_changes(probabilities=probabilities, source="model"))
        write_labelme(annotation.with_changes(vertebrae=tuple(vertebrae)), tmp_path / "pred" / file.relative_to(truth))
    assert flipped is not None and ovcf >= 2
    assert main(["evaluate", "classification", str(tmp_path / "pred"), str(truth), "--report",
                 str(tmp_path / "cls")]) == 0
    metrics = json.loads((tmp_path / "cls" / "metrics.json").read_text())
    assert metrics["per_class"]["OVCF"]["sensitivity"] == pytest.approx((ovcf - 1) / ovcf)
    assert metrics["per_class"]["OVCF"]["specificity"] == 1.0 and metrics["missed_vertebrae"] == 0
    for cls in ("OVCF", "OF", "SN", "KD", "PS", "NORMAL"):
        assert set(metrics["per_class"][cls]) >= {"sensitivity", "specificity", "ppv", "npv", "f1", "auc"}
    html = (tmp_path / "cls" / "report.html").read_text()
    assert "mean ± SD" in html and "data:image/png;base64" in html and "not for clinical use" in html


def test_models_list_activate_and_rollback(study, capsys):
    from core.models.registry import read_model_set, write_model_set

    current = read_model_set(study / "models" / "tiny-v1")
    write_model_set(study / "models", "tiny-v2", current.detector, current.classifier, parent="tiny-v1")
    assert main(["models", str(study), "activate", "tiny-v2"]) == 0
    assert "* tiny-v2" in capsys.readouterr().out
    assert main(["models", str(study), "rollback"]) == 0
    assert "* tiny-v1" in capsys.readouterr().out


def test_models_add_brings_packages_trained_elsewhere_into_the_study(study, capsys):
    from core.models.registry import Registry, read_model_set

    current = read_model_set(study / "models" / "tiny-v1")
    assert main(["models", str(study), "add", "gpu-v2", "--detector", str(current.detector),
                 "--classifier", str(current.classifier), "--activate"]) == 0
    out = capsys.readouterr().out
    assert "added: " in out and "* gpu-v2" in out
    added = read_model_set(study / "models" / "gpu-v2")
    assert added.parent == "tiny-v1" and not added.demo  # neither package is marked demo
    assert Registry(study / "models").active_id() == "gpu-v2"
    # a classifier given as the detector is refused before anything is written; the id must be new
    result = vr("models", study, "add", "wrong", "--detector", current.classifier)
    assert result.returncode == 1 and "not a detector" in result.stderr and str(current.classifier) in result.stderr
    assert not (study / "models" / "wrong").exists()
    result = vr("models", study, "add", "gpu-v2", "--detector", current.detector)
    assert result.returncode == 1 and "already exists" in result.stderr
    assert main(["models", str(study), "rollback"]) == 0 and Registry(study / "models").active_id() == "tiny-v1"


def test_bad_inputs_give_one_line_naming_the_file(tmp_path, capsys):
    result = vr("diagnose", tmp_path, "--models", tmp_path / "nope", "--out", tmp_path / "o")  # as a user runs it
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("vertebra-review: error:")
    assert str(tmp_path / "nope") in result.stderr
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "manifest.json").write_text("{not json")
    for args, problem in (
        (["detect", tmp_path, "--model", tmp_path / "pkg", "--out", tmp_path / "o"], "manifest is not readable JSON"),
        (["evaluate", "detection", tmp_path / "o", tmp_path / "empty", "--report", tmp_path / "r"],
         "no LabelMe JSON files"),
        (["train", "classifier", tmp_path, "--out", tmp_path / "m"], "not a study folder"),
    ):
        assert main([str(a) for a in args]) == 1
        lines = capsys.readouterr().err.strip().splitlines()
        assert lines[-1].startswith("vertebra-review: error:") and problem in lines[-1]


def test_real_data_figures_with_the_projects_own_commands(study, tmp_path, capsys):
    """A segmented real CT imported as a study is measured like any other: detect, then evaluate detection against
    the imported boxes, and evaluate levels on them."""
    from tests.conftest import DICOM_SERIES

    real = tmp_path / "real"
    assert main(["import", str(DICOM_SERIES), str(real), "--labels",
                 str(DICOM_SERIES / "labels_totalsegmentator.nii.gz"), "--label-scheme", "totalsegmentator"]) == 0
    detector = study / "models" / "tiny-v1" / "detector"
    assert main(["detect", str(real), "--model", str(detector), "--out", str(tmp_path / "pred"), "--threshold",
                 "0.05", "--precision", "fp32"]) == 0
    assert main(["evaluate", "detection", str(tmp_path / "pred"), str(real / "readers" / "totalsegmentator"),
                 "--report", str(tmp_path / "report")]) == 0
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert metrics["images"] == 11 and metrics["annotated"] == 11  # one body box per slab
    capsys.readouterr()
    assert main(["evaluate", "levels", str(real), "--reader", "totalsegmentator"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["boxes"] == 11 and report["set_level"]["rate"] == 1.0
    assert main(["evaluate", "levels", str(real)]) == 1  # no consensus there


def test_train_init_fine_tunes_from_a_package_and_refuses_the_wrong_kind(study, tmp_path, capsys):
    """``--init PKG``: the package's architecture and weights are the start (whatever the preset says), and the new
    package names it as its parent. ``--appearance`` (the photometric jitter) and, for the classifier, its grain
    (``--appearance-grain``) and the edge cuts (``--edge-cut``) are recorded in the package; ``--smoothing`` replaces
    the package's own smoothing, which is kept without it."""
    source = study / "models" / "tiny-v1"
    parent = json.loads((source / "detector" / "manifest.json").read_text())
    assert main(["train", "detector", str(study), "--out", str(tmp_path / "m"), "--preset", "cpu", "--epochs", "1",
                 "--precision", "fp32", "--model-id", "d2", "--init", str(source / "detector"), "--appearance"]) == 0
    manifest = json.loads((tmp_path / "m" / "d2" / "manifest.json").read_text())
    assert manifest["training"]["settings"]["appearance"] is True
    views = manifest["architecture"].pop("test_views")
    assert views == 4  # a fine-tuned package keeps this version's test views, whatever its parent's were
    parent["architecture"].pop("test_views", None)
    assert manifest["architecture"] == parent["architecture"]  # not the cpu preset's 512 px, 128-channel network
    assert manifest["parent"] == parent["id"]
    parent = json.loads((source / "classifier" / "manifest.json").read_text())
    assert main(["train", "classifier", str(study), "--out", str(tmp_path / "m"), "--preset", "cpu", "--epochs", "1",
                 "--precision", "fp32", "--model-id", "c2", "--no-endplate", "--init", str(source / "classifier"),
                 "--appearance", "--appearance-grain", "coarse", "--edge-cut", "0.2", "--smoothing", "0.8",
                 "--spacing-mm", "0.7"]) == 0
    manifest = json.loads((tmp_path / "m" / "c2" / "manifest.json").read_text())
    assert manifest["architecture"]["smoothing"] == 0.8 and parent["architecture"].get("smoothing", 0.0) == 0.0
    assert manifest["architecture"]["spacing_mm"] == 0.7 and parent["architecture"].get("spacing_mm", 0.0) == 0.0
    assert manifest["training"]["settings"]["appearance"] is True
    assert manifest["training"]["settings"]["appearance_grain"] == "coarse"
    assert manifest["training"]["settings"]["edge_cut"] == 0.2
    assert manifest["architecture"]["arch"] == parent["architecture"]["arch"]
    assert manifest["parent"] == parent["id"]
    assert main(["train", "classifier", str(study), "--out", str(tmp_path / "m"), "--preset", "cpu", "--epochs", "1",
                 "--precision", "fp32", "--model-id", "c3", "--no-endplate", "--init", str(tmp_path / "m" / "c2")]) == 0
    kept = json.loads((tmp_path / "m" / "c3" / "manifest.json").read_text())
    assert kept["architecture"]["smoothing"] == kept["training"]["settings"]["smoothing"] == 0.8
    assert kept["architecture"]["spacing_mm"] == kept["training"]["settings"]["spacing_mm"] == 0.7  # kept, as a retrain
    capsys.readouterr()
    assert main(["train", "classifier", str(study), "--out", str(tmp_path / "m"), "--model-id", "c4",
                 "--init", str(source / "classifier"), "--smoothing", "4"]) != 0
    err = capsys.readouterr().err
    assert "smoothing is a Gaussian SD from 0 to 3.0 pixels, not 4.0" in err and "internal error" not in err
    assert not (tmp_path / "m" / "c4").exists()
    assert main(["train", "detector", str(study), "--out", str(tmp_path / "m"), "--epochs", "1", "--model-id", "d3",
                 "--init", str(source / "classifier")]) != 0
    err = capsys.readouterr().err
    assert "classifier" in err and "internal error" not in err and not (tmp_path / "m" / "d3").exists()

"""The diagnosis pipeline end to end with a tiny model set: outputs, resume, bad inputs, and the patient summary."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from core.annotations.labelme_io import read_labelme
from core.errors import ModelPackageError
from core.evaluation.patient_summary import write_patient_report
from core.models.pipeline import DiagnosisPipeline
from core.progress import run
from core.study.layout import Study


@pytest.fixture(scope="module")
def pipeline(tiny_model_study) -> DiagnosisPipeline:
    # A threshold of 0 keeps every box the tiny detector finds, so the classifier always has work.
    return DiagnosisPipeline.load(tiny_model_study / "models", precision="fp32", threshold=0.0)


def test_a_slice_gets_vertebrae_with_diseases_probabilities_scores_and_levels(pipeline):
    [result] = pipeline.diagnose_images([np.full((300, 250), 90, np.uint8)])
    assert pipeline.is_demo and "demo model" in pipeline.describe()
    assert "4 views of each slice" in pipeline.describe()  # a detector trained here looks at four views
    assert "smoothed" not in pipeline.describe()
    for vertebra in result.vertebrae:
        assert vertebra.source == "model" and vertebra.diagnosed and vertebra.score is not None
        assert set(vertebra.probabilities) == {"OVCF", "OF", "SN", "KD", "PS", "NORMAL"}
        assert 0 <= vertebra.box.x1 < vertebra.box.x2 <= 250


@pytest.mark.parametrize(("change", "said"), [({"smoothing": 1.0}, "slices smoothed 1 px for the classifier"),
                                              ({"spacing_mm": 0.6}, "slices resampled to 0.6 mm pixels for the "
                                                                    "classifier")])
def test_the_description_says_how_the_classifier_sees_the_slices(pipeline, change, said):
    from dataclasses import replace

    config = pipeline.classifier.config
    try:
        pipeline.classifier.config = replace(config, **change)
        assert said in pipeline.describe()
    finally:
        pipeline.classifier.config = config


def test_the_classifier_gets_each_slices_pixel_spacing(pipeline, tiny_model_study, tmp_path, monkeypatch):
    """A study's DICOM slices carry their spacing to the classifier (which resamples by it when it has a reference
    spacing); a PNG carries none."""

    from core.study.layout import Study

    seen = []
    real_predict = pipeline.classifier.predict

    def spy(images, boxes, *, spacings=None, **kwargs):
        seen.extend(spacings)
        return real_predict(images, boxes, spacings=spacings, **kwargs)

    monkeypatch.setattr(pipeline.classifier, "predict", spy)
    shutil.copytree(tiny_model_study, tmp_path / "study")  # the fixture's study stays as it is
    study = Study.open(tmp_path / "study")
    case, slice_id = study.all_slices()[0]
    run(pipeline.diagnose_study(study, [(case, slice_id)]))
    assert seen == [study.read_image(case, slice_id).spacing_mm] and seen[0] is not None
    seen.clear()
    png = tmp_path / "slice.png"
    png.write_bytes(study.labelme_image_path(case, slice_id).read_bytes())
    run(pipeline.diagnose_inputs([png], tmp_path / "out"))
    assert seen == [None]


def test_diagnose_study_writes_predictions_and_a_rerun_skips_done_slices(pipeline, tiny_model_study, tmp_path):
    study_copy = tmp_path / "study"
    shutil.copytree(tiny_model_study, study_copy)
    report = run(pipeline.diagnose_inputs([study_copy], tmp_path / "out"))
    assert report.slices == 6 and not report.errors
    written = read_labelme(tmp_path / "out" / "case-0001" / "s001.json")
    assert written.model == "tiny-v1"
    # the thresholds the diseases were called with travel with the result (judging its close calls later)
    thresholds = pipeline.classifier.config.thresholds
    assert dict(written.thresholds) == {c: round(thresholds[c], 4) for c in ("OVCF", "OF", "SN", "KD", "PS")}
    assert (tmp_path / "out" / "case-0001" / written.image_path).resolve().is_file()
    again = run(pipeline.diagnose_inputs([study_copy], tmp_path / "out"))
    assert (again.slices, again.skipped) == (0, 6)
    again = run(pipeline.diagnose_inputs([study_copy], tmp_path / "out", overwrite=True))
    assert again.slices == 6


def test_a_corrupt_input_is_reported_and_the_rest_processed(pipeline, tiny_model_study, tmp_path):
    study_copy = tmp_path / "study"
    shutil.copytree(tiny_model_study, study_copy)
    study = Study.open(study_copy)
    bad = study.image_path("case-0002", "s001")
    bad.write_bytes(bad.read_bytes()[:200])  # truncated DICOM
    study.labelme_image_path("case-0002", "s001").write_bytes(b"not a png")
    report = run(pipeline.diagnose_study(study))
    assert report.slices == 5
    assert len(report.errors) == 1 and report.errors[0][0] == "case-0002/s001"
    assert not (study_copy / "predictions" / "tiny-v1" / "case-0002" / "s001.json").exists()
    assert (study_copy / "predictions" / "tiny-v1" / "case-0002" / "s002.json").is_file()


def test_images_folders_and_missing_inputs(pipeline, tiny_model_study, tmp_path):
    from core.imaging.png_io import write_png

    folder = tmp_path / "exported"
    folder.mkdir()
    write_png(folder / "a.png", np.full((200, 180), 80, np.uint8))
    write_png(folder / "b.png", np.full((220, 160), 120, np.uint8))
    report = run(pipeline.diagnose_inputs([folder, tmp_path / "missing.png"], tmp_path / "out"))
    assert report.slices == 2
    assert report.errors == [(str(tmp_path / "missing.png"), "no such file or folder")]
    assert read_labelme(tmp_path / "out" / "exported" / "a.json").image_width == 180


def test_a_missing_model_is_a_typed_error(tmp_path):
    with pytest.raises(ModelPackageError):
        DiagnosisPipeline.load(tmp_path / "nothing")


def test_the_patient_summary_names_levels_and_alerts(tmp_path):
    """Hand-made predictions: L1 has OVCF on two slices (max probability 0.9), L2 is normal."""
    from core.annotations.labelme_io import write_labelme
    from core.annotations.model import Box, Disease, SliceAnnotation, Vertebra

    def slice_with(p_ovcf: float, shift: float) -> SliceAnnotation:
        return SliceAnnotation(200, 200, (
            Vertebra(Box(10 + shift, 10, 60 + shift, 40), diseases=frozenset({Disease.OVCF}), level="L1",
                     probabilities={"OVCF": p_ovcf, "NORMAL": 0.1}, source="model"),
            Vertebra(Box(10 + shift, 50, 60 + shift, 80), level="L2", probabilities={"OVCF": 0.05, "NORMAL": 0.9},
                     source="model"),
        ), image_path="x.png", model="m1")

    write_labelme(slice_with(0.7, 0), tmp_path / "case-0001" / "s001.json")
    write_labelme(slice_with(0.9, 2), tmp_path / "case-0001" / "s002.json")
    summaries, notes, out = write_patient_report(tmp_path)
    [summary] = summaries
    assert not notes and summary["case"] == "case-0001" and summary["slices"] == 2
    assert summary["alerts"] == [{"vertebra": "L1", "disease": "OVCF", "name": "osteoporotic vertebral compression "
                                  "fracture", "max_probability": 0.9, "slices": 2}]
    assert [v["vertebra"] for v in summary["vertebrae"]] == ["L1", "L2"]
    assert json.loads((out / "summary.json").read_text())["cases"][0]["alerts"][0]["vertebra"] == "L1"
    html = (out / "summary.html").read_text()
    assert "not for clinical use" in html and "L1" in html
    assert write_patient_report(tmp_path)[0] == summaries  # the summary file itself is not read as a prediction


def test_the_patient_summary_gives_each_vertebra_its_highest_genant_grade(tmp_path):
    """L1 is graded 1 on one slice and 3 on the next, L2 on neither: L1 gets 3, L2 none, in JSON and HTML."""
    from core.annotations.labelme_io import write_labelme
    from core.annotations.model import Box, SliceAnnotation, Vertebra

    def slice_with(grade: int | None, shift: float) -> SliceAnnotation:
        return SliceAnnotation(200, 200, (
            Vertebra(Box(10 + shift, 10, 60 + shift, 40), level="L1", genant=grade, source="import"),
            Vertebra(Box(10 + shift, 50, 60 + shift, 80), level="L2", source="import"),
        ), image_path="x.png")

    write_labelme(slice_with(1, 0), tmp_path / "case-0001" / "s001.json")
    write_labelme(slice_with(3, 2), tmp_path / "case-0001" / "s002.json")
    write_labelme(slice_with(None, 4), tmp_path / "case-0001" / "s003.json")
    summaries, _, out = write_patient_report(tmp_path, tmp_path.parent / f"{tmp_path.name}-summary")
    assert [(v["vertebra"], v["genant"]) for v in summaries[0]["vertebrae"]] == [("L1", 3), ("L2", None)]
    written = json.loads((out / "summary.json").read_text())["cases"][0]["vertebrae"]
    assert [v["genant"] for v in written] == [3, None]
    html = (out / "summary.html").read_text()
    assert "<th>Genant grade</th>" in html and "<td>NORMAL</td><td>3</td>" in html


def test_the_patient_summary_is_not_written_among_peoples_annotations_or_over_a_slice(tmp_path):
    """A reader's or the consensus's files (no model) are summarised only into a folder given for it, and a
    summary.json that an earlier report did not write (a slice of that name) is never replaced."""
    from core.annotations.labelme_io import write_labelme
    from core.annotations.model import Box, SliceAnnotation, Vertebra
    from core.errors import FileWriteError, VertebraReviewError

    def one(model: str | None) -> SliceAnnotation:
        return SliceAnnotation(200, 200, (Vertebra(Box(10, 10, 60, 40), level="L1"),), image_path="x.png",
                               model=model)

    people, predictions = tmp_path / "readers" / "r1", tmp_path / "predictions"
    write_labelme(one(None), people / "case-0001" / "s001.json")
    with pytest.raises(VertebraReviewError, match=r"people's annotations .* case-0001.*give --out"):
        write_patient_report(people)
    assert sorted(p.name for p in people.iterdir()) == ["case-0001"]  # nothing was written among them
    summaries, _, out = write_patient_report(people, tmp_path / "summary")
    assert out == tmp_path / "summary" and summaries[0]["annotated_by_people"]
    write_labelme(one("m1"), predictions / "case-0001" / "s001.json")
    slice_named_summary = write_labelme(one("m1"), predictions / "summary.json")
    before = slice_named_summary.read_bytes()
    with pytest.raises(FileWriteError, match="not a summary written by vertebra-review"):
        write_patient_report(predictions)
    assert slice_named_summary.read_bytes() == before and not (predictions / "summary.html").exists()

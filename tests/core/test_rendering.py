"""The slice as the model sees it: one rule for training, ``diagnose`` and ``detect``, whatever window a study was
imported with, and the rendering a package records is the one it is fed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from core.errors import ModelPackageError
from core.imaging.dicom import read_dicom
from core.imaging.image import SliceImage
from core.imaging.letterbox import InputGeometry
from core.imaging.rendering import check_rendering, model_view
from core.imaging.windowing import BONE, apply_window, min_max_window
from core.models.pipeline import DiagnosisPipeline
from core.progress import run
from core.training.classification_data import SliceCache
from core.training.classification_engine import ClassifierTraining
from core.training.datasets import DetectionDataset, study_records
from core.training.detection_engine import DetectorTraining
from desktop.cli import main
from tests.core.rendering_helpers import IMPORT_WINDOWS, NetworkInputs, import_slice, model_set_with_rendering


@pytest.fixture(scope="module")
def source(dicom_series_files):
    return dicom_series_files[len(dicom_series_files) // 2]  # real CT, JPEG lossless, with two DICOM windows


@pytest.fixture(scope="module")
def pipelines(tiny_model_study, tmp_path_factory):
    """A loaded model set per rendering (loaded once: loading is the slow part)."""
    folder = tmp_path_factory.mktemp("renderings")
    return {rendering: DiagnosisPipeline.load(model_set_with_rendering(tiny_model_study, folder / rendering,
                                                                       rendering), precision="fp32")
            for rendering in ("min-max", "bone")}


def test_a_hu_slice_goes_through_the_rendering_window():
    pixels = np.array([[-1000.0, 0.0], [400.0, 3000.0]], dtype=np.float32)
    image = SliceImage(pixels, hu=True)
    assert np.array_equal(model_view(image), apply_window(pixels, min_max_window(pixels)))
    assert np.array_equal(model_view(image, "bone"), apply_window(pixels, BONE))
    assert model_view(image, "bone").tolist() == [[0, 71], [128, 255]]


def test_an_image_without_hu_is_taken_as_it_is_whatever_the_rendering():
    eight_bit = SliceImage(np.array([[3.0, 90.0], [200.0, 250.0]], dtype=np.float32), bits=8)
    for rendering in ("min-max", "bone", "soft", "dicom", "40,400"):
        assert model_view(eight_bit, rendering).tolist() == [[3, 90], [200, 250]]
    deep = SliceImage(np.array([[100.0, 600.0], [1100.0, 4100.0]], dtype=np.float32), bits=16)
    assert model_view(deep, "bone").tolist() == [[0, 32], [64, 255]]


def test_an_unknown_rendering_is_refused_with_its_choices():
    assert check_rendering("40,400") == "40,400"
    with pytest.raises(ValueError, match="bone, soft, min-max, dicom or CENTER,WIDTH"):
        check_rendering("lung-ish")


@pytest.mark.parametrize("rendering", ["min-max", "bone"])
@pytest.mark.parametrize("window", IMPORT_WINDOWS)
def test_training_and_diagnose_hand_the_network_the_same_bytes(pipelines, source, tmp_path, monkeypatch, window,
                                                               rendering):
    study, case, slice_id = import_slice(source, tmp_path / "study", window)
    expected = model_view(read_dicom(source)[0], rendering)
    # The labelme PNG is the import's display choice: under any other window it is not what the model learns from.
    with Image.open(study.labelme_image_path(case, slice_id)) as png:
        assert np.array_equal(np.asarray(png), expected) == (window == rendering)

    records, _ = study_records(study.root)
    assert np.array_equal(SliceCache(rendering).image(records[0]), expected)  # the classifier's training input
    geometry = InputGeometry(1024, 256)
    trained_on, _, _ = DetectionDataset(records, geometry, "none", rendering).sample(0)  # the detector's
    assert np.array_equal(trained_on, geometry.image(expected))

    pipeline = pipelines[rendering]
    assert pipeline.rendering == rendering
    for inputs in ([study.root], [source]):  # diagnose on the study, and on the file the study was imported from
        seen = NetworkInputs().install(monkeypatch)
        report = run(pipeline.diagnose_inputs(inputs, tmp_path / "out", overwrite=True))
        assert report.slices == 1 and not report.errors
        assert np.array_equal(seen.only(), expected)
        monkeypatch.undo()


def test_detect_feeds_a_detector_its_own_rendering(tiny_model_study, source, tmp_path, monkeypatch):
    models = model_set_with_rendering(tiny_model_study, tmp_path / "set", "soft")
    seen = NetworkInputs().install(monkeypatch)
    code = main(["detect", str(source), "--model", str(models / "detector"), "--out", str(tmp_path / "out")])
    assert code == 0
    assert len(seen.detector) == 1
    assert np.array_equal(seen.detector[0], model_view(read_dicom(source)[0], "soft"))


def test_a_model_set_of_two_renderings_is_refused(tiny_model_study, tmp_path):
    models = model_set_with_rendering(tiny_model_study, tmp_path / "set", "min-max")
    manifest = models / "classifier" / "manifest.json"
    data = json.loads(manifest.read_text())
    data["architecture"]["window"] = "bone"
    manifest.write_text(json.dumps(data))
    with pytest.raises(ModelPackageError, match=r"rendered 'min-max'.*'bone'"):
        DiagnosisPipeline.load(models, precision="fp32")


def test_a_package_naming_an_unknown_rendering_is_a_package_error(tiny_model_study, tmp_path):
    models = model_set_with_rendering(tiny_model_study, tmp_path / "set", "sepia")
    with pytest.raises(ModelPackageError, match="unknown window 'sepia'"):
        DiagnosisPipeline.load(models, precision="fp32")


def test_training_records_the_rendering_it_was_given():
    assert DetectorTraining(window="bone").architecture().window == "bone"
    assert ClassifierTraining(window="40,400").architecture().window == "40,400"
    assert DetectorTraining().architecture().window == ClassifierTraining().architecture().window == "min-max"


def test_the_train_commands_refuse_an_unknown_window(capsys, tmp_path):
    for command in (["train", "detector"], ["train", "classifier"]):
        with pytest.raises(SystemExit) as exit_info:
            main([*command, str(tmp_path), "--out", str(tmp_path / "m"), "--window", "sepia"])
        assert exit_info.value.code == 2
        assert "unknown window 'sepia'" in capsys.readouterr().err

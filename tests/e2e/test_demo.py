"""The demo: ``demo build`` makes the study a newcomer opens, and the bundled one is what the README promises."""

from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest
from pydicom.uid import JPEG2000Lossless
from safetensors import safe_open

from core.errors import StudyError
from core.models.registry import Registry
from core.progress import run
from core.resources import resources_dir
from core.study.layout import Study
from core.synthetic.demo import AGREED_CASE, DEMO_MODEL_ID, DEMO_STUDY, build_demo


@pytest.fixture(scope="module")
def demo(tiny_model_study, tmp_path_factory):
    from core.models.registry import read_model_set

    models = read_model_set(tiny_model_study / "models" / "tiny-v1")
    out = tmp_path_factory.mktemp("demo") / "demo"
    report = run(build_demo(out, detector=models.detector, classifier=models.classifier))
    return out, report


@pytest.mark.slow
def test_demo_build_makes_three_readers_one_agreed_case_and_active_demo_models(demo):
    out, report = demo
    study = Study.open(out)
    assert study.readers() == ["r1", "r2", "r3"] and len(study.cases()) == DEMO_STUDY.cases
    assert report.slices == len(study.all_slices()) == DEMO_STUDY.cases * DEMO_STUDY.slices_per_case
    agreed = {case for case, slice_id in study.all_slices() if study.load_annotation(case, slice_id) is not None}
    assert agreed == {AGREED_CASE}
    registry = Registry(out / "models")
    active = registry.active()
    assert active is not None and active.model_id == DEMO_MODEL_ID and active.demo
    for package in (active.detector, active.classifier):
        manifest = json.loads((package / "manifest.json").read_text())
        assert manifest["demo"] is True and "not for clinical use" in manifest["notes"]
        with safe_open(package / "weights.safetensors", "pt") as weights:
            tensors = [weights.get_tensor(name) for name in weights.keys()]  # noqa: SIM118 (not a dict)
        floats = [tensor.dtype for tensor in tensors if tensor.is_floating_point()]
        assert floats and all(str(dtype) == "torch.float16" for dtype in floats)
    predicted = [k for k in study.all_slices() if study.prediction_path(DEMO_MODEL_ID, *k).is_file()]
    assert len(predicted) == report.slices


@pytest.mark.slow
def test_demo_slices_are_lossless_jpeg_2000_with_the_phantom_hu(demo, tmp_path):
    from core.synthetic.generate import generate_study

    out, _ = demo
    case, slice_id = Study.open(out).all_slices()[3]
    dataset = pydicom.dcmread(Study.open(out).image_path(case, slice_id))
    assert dataset.file_meta.TransferSyntaxUID == JPEG2000Lossless
    reference = tmp_path / "reference"
    run(generate_study(reference, DEMO_STUDY))
    original = pydicom.dcmread(Study.open(reference).image_path(case, slice_id))
    assert np.array_equal(dataset.pixel_array, original.pixel_array)  # lossless: the same stored values


def test_demo_build_refuses_a_folder_that_is_not_empty(tmp_path):
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "keep.txt").write_text("mine")
    with pytest.raises(StudyError, match="not empty"):
        run(build_demo(tmp_path / "demo", detector=tmp_path / "x", classifier=tmp_path / "y"))
    assert (tmp_path / "demo" / "keep.txt").read_text() == "mine"


BUNDLED = resources_dir() / "demo"


def test_the_bundled_demo_is_small_and_marked_demo():
    assert Study.is_study(BUNDLED), "resources/demo is missing: vertebra-review demo build resources/demo"
    registry = Registry(BUNDLED / "models")
    active = registry.active()
    assert active is not None and active.demo
    models_mb = sum(f.stat().st_size for f in (BUNDLED / "models").rglob("*") if f.is_file()) / 1e6
    assert models_mb <= 60
    study = Study.open(BUNDLED)
    assert len(study.readers()) == 3 and len(study.all_slices()) >= 50
    assert all(study.prediction_path(active.model_id, *k).is_file() for k in study.all_slices())


def test_the_bundled_classifier_sees_schmorls_nodes_with_its_endplate_head():
    """The demo classifier carries the endplate head, and on its validation split SN was learnt (not left out as
    unlearnt) and is called at a threshold below 1."""
    from core.models.classifier import VertebraClassifier
    from core.models.package import read_manifest

    active = Registry(BUNDLED / "models").active()
    assert active is not None
    manifest = read_manifest(active.classifier, kind="classifier")
    assert manifest.architecture["endplate"] is not None
    assert "SN" not in manifest.training["not_learnt"] and manifest.architecture["thresholds"]["SN"] < 1.0
    assert manifest.metrics["validation"]["per_class"]["SN"]["auc"] >= 0.9
    assert VertebraClassifier.from_package(active.classifier, device="cpu").endplate is not None

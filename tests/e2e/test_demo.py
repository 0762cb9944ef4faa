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


@pytest.mark.slow
def test_the_anatomy_stage_fine_tunes_both_models_on_a_mix_of_both_sources(tiny_model_study, tmp_path, monkeypatch):
    """``demo build --anatomy``'s training, at tiny sizes: anatomy studies from the bundled label maps and the
    analytic mix are written, and both packages start from the given ones (their parent) with their architecture."""
    from core.models.registry import read_model_set
    from core.resources import sample_label_maps
    from core.synthetic import demo as recipe
    from core.synthetic.anatomy_study import AnatomySource

    models = read_model_set(tiny_model_study / "models" / "tiny-v1")
    monkeypatch.setattr(recipe, "ANATOMY_TRAINING", {"anatomy": (2, 1, 101), "anatomy_val": (1, 1, 102)})
    monkeypatch.setattr(recipe, "ANATOMY_MIX", {"train": 1, "val": 1})
    monkeypatch.setattr(recipe, "FINE_TUNE_DETECTOR", {"epochs": 1, "lr": 0.001, "lr_drop_epochs": (1,),
                                                       "batch_size": 2, "warmup_steps": 1, "precision": "fp32"})
    monkeypatch.setattr(recipe, "FINE_TUNE_CLASSIFIER", {"epochs": 1, "endplate": False, "patches_per_box": 1,
                                                         "precision": "fp32", "warmup_steps": 1})
    sources = tuple(AnatomySource(path, scheme) for path, scheme in sample_label_maps())
    run(recipe.fine_tune_on_anatomy(tmp_path, sources, models.detector, models.classifier))
    assert Study.open(tmp_path / "anatomy").settings.extra["synthetic"]["generator"] == "anatomy"
    assert len(Study.open(tmp_path / "anatomy").all_slices()) == 2
    assert len(Study.open(tmp_path / "mix_train").cases()) == 1
    for kind, given in (("detector", models.detector), ("classifier", models.classifier)):
        tuned = json.loads((tmp_path / "tuned" / kind / "manifest.json").read_text())
        parent = json.loads((given / "manifest.json").read_text())
        def network(manifest):  # the architecture, less the thresholds chosen anew on the validation split
            return {k: v for k, v in manifest["architecture"].items() if k != "thresholds"}
        assert tuned["parent"] == parent["id"] and network(tuned) == network(parent)
        assert tuned["training"]["epochs"] == 1


@pytest.mark.slow
def test_the_anatomy_stage_keeps_the_analytic_classifier_when_the_recipe_says_so(tiny_model_study, tmp_path,
                                                                                   monkeypatch):
    """The bundled recipe fine-tunes the detector alone (``FINE_TUNE_CLASSIFIER = None``): no classifier is trained,
    and the demo set is built from the tuned detector and the classifier it was given."""
    from core.models.registry import read_model_set
    from core.resources import sample_label_maps
    from core.synthetic import demo as recipe
    from core.synthetic.anatomy_study import AnatomySource

    assert recipe.FINE_TUNE_CLASSIFIER is None  # the bundled recipe
    models = read_model_set(tiny_model_study / "models" / "tiny-v1")
    monkeypatch.setattr(recipe, "ANATOMY_TRAINING", {"anatomy": (1, 1, 101), "anatomy_val": (1, 1, 102)})
    monkeypatch.setattr(recipe, "ANATOMY_MIX", {"train": 1, "val": 1})
    monkeypatch.setattr(recipe, "FINE_TUNE_DETECTOR", {"epochs": 1, "lr": 0.001, "lr_drop_epochs": (1,),
                                                       "batch_size": 2, "warmup_steps": 1, "precision": "fp32"})
    sources = tuple(AnatomySource(path, scheme) for path, scheme in sample_label_maps())
    run(recipe.fine_tune_on_anatomy(tmp_path, sources, models.detector, models.classifier))
    assert (tmp_path / "tuned" / "detector" / "manifest.json").is_file()
    assert not (tmp_path / "tuned" / "classifier").exists()


def test_the_first_anatomy_stage_leaves_out_the_map_new_in_the_second():
    from core.synthetic import demo as recipe

    sources = tuple(f"map{i}" for i in range(6))
    assert recipe.first_stage_maps(sources) == ("map0", "map1", "map2", "map4", "map5")
    assert recipe.first_stage_maps(sources[:2]) == sources[:2]  # fewer maps: none is left out


def tiny_stage(monkeypatch, stage: str) -> None:
    """The recipe at tiny sizes for a jitter stage (``"3"``: the second anatomy stage, ``"4"``: the third, ``"5"``: the
    smoothing stage, a classifier alone): one-slice analytic studies, one epoch of each model in float32, the stage's
    own settings otherwise kept."""
    from core.synthetic import demo as recipe
    from core.synthetic.generate import SynthOptions

    tiny = SynthOptions(cases=1, seed=3, slices_per_case=1, readers=0)
    monkeypatch.setattr(recipe, "TRAINING", {name: tiny for name in ("train", "train2", "val", "val2", "val3")})
    monkeypatch.setattr(recipe, "ANATOMY_MIX", {"train": 1, "val": 1})
    detector = getattr(recipe, f"FINE_TUNE_DETECTOR_{stage}", None)
    if detector is not None:
        monkeypatch.setattr(recipe, f"FINE_TUNE_DETECTOR_{stage}", {**detector, "epochs": 1, "batch_size": 2,
                                                                    "warmup_steps": 1, "precision": "fp32"})
    classifier = getattr(recipe, f"FINE_TUNE_CLASSIFIER_{stage}")
    if classifier is not None:
        monkeypatch.setattr(recipe, f"FINE_TUNE_CLASSIFIER_{stage}", {**classifier, "epochs": 1, "endplate": False,
                                                                      "patches_per_box": 1, "precision": "fp32",
                                                                      "warmup_steps": 1})


@pytest.mark.slow
def test_the_second_anatomy_stage_fine_tunes_both_models_with_the_jitter(tiny_model_study, tmp_path, monkeypatch):
    """``demo build --anatomy``'s second stage, at tiny sizes: a new anatomy study, the detector fine-tuned from the
    one given with the photometric jitter, and the classifier from the one given, with the jitter, on the analytic
    studies and the new anatomy study, validated on the analytic validation studies only."""
    from core.models.registry import read_model_set
    from core.resources import sample_label_maps
    from core.synthetic import demo as recipe
    from core.synthetic.anatomy_study import AnatomySource

    models = read_model_set(tiny_model_study / "models" / "tiny-v1")
    tiny_stage(monkeypatch, "3")
    monkeypatch.setattr(recipe, "STAGE3_TRAINING", {"anatomy3": (2, 1, 103), "anatomy3_val": (1, 1, 104)})
    sources = tuple(AnatomySource(path, scheme) for path, scheme in sample_label_maps())
    run(recipe.second_anatomy_stage(tmp_path, sources, models.detector, models.classifier))
    assert len(Study.open(tmp_path / "anatomy3").all_slices()) == 2
    for kind, given in (("detector", models.detector), ("classifier", models.classifier)):
        tuned = json.loads((tmp_path / "tuned3" / kind / "manifest.json").read_text())
        assert tuned["parent"] == json.loads((given / "manifest.json").read_text())["id"]
        assert tuned["training"]["settings"]["appearance"] is True
    classifier = json.loads((tmp_path / "tuned3" / "classifier" / "manifest.json").read_text())
    assert [p.rsplit("/", 1)[-1] for p in classifier["training"]["studies"]] == list(recipe.CLASSIFIER_3_STUDIES)
    detector = json.loads((tmp_path / "tuned3" / "detector" / "manifest.json").read_text())
    assert [p.rsplit("/", 1)[-1] for p in detector["training"]["studies"]] == ["anatomy3", "mix_train"]


@pytest.mark.slow
def test_the_third_anatomy_stage_fine_tunes_the_second_stages_models_on_a_fresh_study(tiny_model_study, tmp_path,
                                                                                      monkeypatch):
    """``demo build --anatomy``'s third stage, at tiny sizes: a fresh anatomy study (the second stage's studies made
    too, its validation study used), the detector and the classifier fine-tuned from the ones given with the jitter,
    the classifier on both anatomy studies beside the analytic ones."""
    from core.models.registry import read_model_set
    from core.resources import sample_label_maps
    from core.synthetic import demo as recipe
    from core.synthetic.anatomy_study import AnatomySource

    models = read_model_set(tiny_model_study / "models" / "tiny-v1")
    tiny_stage(monkeypatch, "4")
    monkeypatch.setattr(recipe, "STAGE3_TRAINING", {"anatomy3": (1, 1, 103), "anatomy3_val": (1, 1, 104)})
    monkeypatch.setattr(recipe, "STAGE4_TRAINING", {"anatomy4": (2, 1, 105)})
    sources = tuple(AnatomySource(path, scheme) for path, scheme in sample_label_maps())
    run(recipe.third_anatomy_stage(tmp_path, sources, models.detector, models.classifier))
    assert len(Study.open(tmp_path / "anatomy4").all_slices()) == 2
    assert (tmp_path / "anatomy3").is_dir() and (tmp_path / "anatomy3_val").is_dir()
    detector = json.loads((tmp_path / "tuned4" / "detector" / "manifest.json").read_text())
    assert detector["parent"] == json.loads((models.detector / "manifest.json").read_text())["id"]
    assert detector["training"]["settings"]["appearance"] is True
    assert detector["training"]["settings"]["lr"] == recipe.FINE_TUNE_DETECTOR_4["lr"]
    assert [p.rsplit("/", 1)[-1] for p in detector["training"]["studies"]] == ["anatomy4", "mix_train"]
    classifier_dir = tmp_path / "tuned4" / "classifier"
    assert classifier_dir.is_dir() == (recipe.FINE_TUNE_CLASSIFIER_4 is not None)
    if classifier_dir.is_dir():
        classifier = json.loads((classifier_dir / "manifest.json").read_text())
        assert [p.rsplit("/", 1)[-1] for p in classifier["training"]["studies"]] == list(recipe.CLASSIFIER_4_STUDIES)
        assert classifier["training"]["settings"]["appearance"] is True


@pytest.mark.parametrize(("stage", "folder", "record", "field", "value"), [
    ("smoothing_stage", "tuned5", "smoothing_set", "smoothing", "STAGE5_SMOOTHING"),
    ("spacing_stage", "tuned6", "view_set", "spacing_mm", "STAGE6_SPACING_MM"),
])
def test_the_test_time_stages_set_how_the_classifier_sees_each_slice(tiny_model_study, tmp_path, monkeypatch, stage,
                                                                    folder, record, field, value):
    """``demo build --anatomy``'s last two stages, at tiny sizes: the classifier given copied with the recipe's
    smoothing (then its reference pixel spacing), the other setting and the weights kept, its thresholds chosen on the
    analytic validation studies (made here)."""
    import torch

    from core.models.package import read_weights
    from core.models.registry import read_model_set
    from core.synthetic import demo as recipe
    from core.synthetic.generate import SynthOptions

    models = read_model_set(tiny_model_study / "models" / "tiny-v1")
    tiny = SynthOptions(cases=1, seed=3, slices_per_case=2, readers=0)
    monkeypatch.setattr(recipe, "TRAINING", {name: tiny for name in ("train", "train2", "val", "val2", "val3")})
    run(getattr(recipe, stage)(tmp_path, models.classifier))
    assert sorted(p.name for p in tmp_path.iterdir()) == [folder, "val", "val2", "val3"]  # no training study made
    package = tmp_path / folder / "classifier"
    classifier = json.loads((package / "manifest.json").read_text())
    parent = json.loads((models.classifier / "manifest.json").read_text())
    assert classifier["parent"] == parent["id"]
    assert classifier["architecture"][field] == getattr(recipe, value) > 0
    other = "spacing_mm" if field == "smoothing" else "smoothing"
    assert classifier["architecture"][other] == parent["architecture"].get(other, 0.0)
    assert [p.rsplit("/", 1)[-1] for p in classifier["training"][record]["validation"]] == ["val", "val2", "val3"]
    before, after = read_weights(models.classifier), read_weights(package)
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)

"""The detector: D4 transforms and the input geometry move boxes exactly, a tiny configuration learns, packages
load safely, and hostile or broken packages are refused with a typed error."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from core.errors import ModelPackageError, TrainingError
from core.imaging.letterbox import InputGeometry
from core.models.detector import DetectorConfig, VertebraDetector, build_detector
from core.models.package import MANIFEST, WEIGHTS, read_manifest, write_package
from core.progress import run
from core.synthetic.generate import SynthOptions, generate_study
from core.training.datasets import DetectionDataset, study_records
from core.training.detection_engine import DetectorTraining, train_detector
from core.training.transforms import D4_SIZE, d4_boxes, d4_image

TINY = DetectorTraining(backbone="resnet18", size=128, epochs=1, batch_size=2, lr=0.01, warmup_steps=1,
                        augment="d4-random", val_fraction=0.5, seed=3, precision="fp32")


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("det") / "study"
    run(generate_study(root, SynthOptions(cases=2, seed=8, slices_per_case=2, readers=0)))
    return root


@settings(max_examples=200, deadline=None)
@given(side=st.integers(2, 40), k=st.integers(0, D4_SIZE - 1), data=st.data())
def test_d4_moves_boxes_exactly_with_the_pixels(side, k, data):
    """A marked pixel and its 1-pixel box land in the same place under every element of D4."""
    r = data.draw(st.integers(0, side - 1))
    c = data.draw(st.integers(0, side - 1))
    image = np.zeros((side, side), dtype=np.uint8)
    image[r, c] = 255
    moved = d4_image(image, k)
    box = d4_boxes(np.array([[c, r, c + 1, r + 1]], dtype=float), k, side)[0]
    rows, cols = np.nonzero(moved)
    assert (cols[0], rows[0], cols[0] + 1, rows[0] + 1) == tuple(box)


def test_d4_has_eight_distinct_elements_and_inverts():
    image = np.arange(16, dtype=np.uint8).reshape(4, 4)
    results = {d4_image(image, k).tobytes() for k in range(D4_SIZE)}
    assert len(results) == 8
    boxes = np.array([[0.5, 1.25, 3.0, 2.75]])
    for k in range(D4_SIZE):  # four quarter turns, or a flip twice, give the identity
        if k < 4:
            turned = boxes
            for _ in range(4):
                turned = d4_boxes(turned, k, 4.0)
            assert np.array_equal(turned, boxes)
        else:
            assert np.array_equal(d4_boxes(d4_boxes(boxes, k, 4.0), k, 4.0), boxes)


@settings(max_examples=200, deadline=None)
@given(width=st.integers(50, 1500), height=st.integers(50, 1500), size=st.sampled_from([256, 512, 1024]),
       data=st.data())
def test_input_geometry_maps_boxes_exactly_both_ways(width, height, size, data):
    geometry = InputGeometry(1024, size)
    x1 = data.draw(st.integers(0, width - 2)) / 4
    y1 = data.draw(st.integers(0, height - 2)) / 4
    box = np.array([[x1, y1, x1 + 1.5, y1 + 2.25]])
    inside = geometry.to_input(box, width, height)
    letter = geometry.letterbox(width, height)
    x0, y0, x9, y9 = letter.visible_region()
    if x0 <= box[0, 0] and box[0, 2] <= x9 and y0 <= box[0, 1] and box[0, 3] <= y9:
        back = geometry.from_input(inside, width, height)
        assert np.allclose(back, box, atol=1e-9)


def _loss_on(model: torch.nn.Module, dataset: DetectionDataset) -> float:
    """The training loss of ``model`` on every sample of ``dataset``, with the samplers seeded (no update)."""
    model.train()
    total = 0.0
    with torch.no_grad():
        for index in range(len(dataset)):
            image, target = dataset[index]
            torch.manual_seed(0)
            total += float(sum(model([image], [target]).values()))
    return total / len(dataset)


@pytest.mark.slow
def test_tiny_configuration_trains_one_epoch_on_four_images_and_the_loss_falls(tiny_study, tmp_path):
    settings_ = DetectorTraining(**{**TINY.__dict__, "batch_size": 1, "augment": "none"})
    records, _ = study_records(tiny_study)
    assert len(records) == 4
    config = settings_.architecture()
    dataset = DetectionDataset(records, config.geometry)
    torch.manual_seed(settings_.seed)  # the engine's initial weights
    before = _loss_on(build_detector(config), dataset)
    events = []
    # The same study for validation: all four slices are trained on.
    result = run(train_detector([tiny_study], tmp_path / "models", settings_, validation=[tiny_study],
                                model_id="tiny"), events.append)
    assert [e.step for e in events if e.stage == "train"] == [1, 2, 3, 4]
    after_model = build_detector(config, use_imagenet=False)
    after_model.load_state_dict(load_file(result.package / WEIGHTS))
    after = _loss_on(after_model, dataset)
    assert after < 0.95 * before, (before, after)
    assert [e.step for e in events if e.stage == "validate"] == [1]
    manifest = read_manifest(result.package, kind="detector")
    assert manifest.architecture["geometry"] == {"side": 1024, "size": 128}
    assert manifest.architecture["test_views"] == 4  # a detector trained here looks at four views at test time
    assert manifest.training["best_epoch"] == result.best_epoch == 1
    assert "ap50" in manifest.metrics["validation"]
    assert not (tmp_path / "models" / ".training" / "tiny").exists()  # training leftovers removed on publish
    detector = VertebraDetector.from_package(result.package, precision="fp32")
    found = detector.detect([np.zeros((300, 200), dtype=np.uint8)], threshold=0.0)
    assert found[0].boxes.shape[1] == 4 and np.all(found[0].boxes[:, 2] <= 200)


@pytest.mark.slow
def test_the_best_epoch_is_kept(tiny_study, tmp_path):
    settings_ = DetectorTraining(**{**TINY.__dict__, "epochs": 3})
    result = run(train_detector([tiny_study], tmp_path / "models", settings_, model_id="best"))
    assert len(result.history) == 3
    best = max(result.history, key=lambda m: m["ap50"])
    assert result.best_epoch == best["epoch"] and result.metrics["ap50"] == best["ap50"]


@pytest.mark.slow
def test_training_is_repeatable_with_a_seed(tiny_study, tmp_path):
    one = run(train_detector([tiny_study], tmp_path / "a", TINY, model_id="m"))
    two = run(train_detector([tiny_study], tmp_path / "b", TINY, model_id="m"))
    wa, wb = load_file(one.package / WEIGHTS), load_file(two.package / WEIGHTS)
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.slow
def test_cancel_then_resume_from_the_checkpoint(tiny_study, tmp_path):
    settings_ = DetectorTraining(**{**TINY.__dict__, "epochs": 2})
    job = train_detector([tiny_study], tmp_path / "models", settings_, model_id="r")
    for event in job:
        if event.stage == "validate":  # epoch 1 done and checkpointed: stop here
            job.close()
            break
    assert not (tmp_path / "models" / "r").exists()  # nothing published
    assert (tmp_path / "models" / ".training" / "r" / "checkpoint.pt").is_file()
    stages = []
    result = run(train_detector([tiny_study], tmp_path / "models", settings_, model_id="r", resume=True),
                 lambda e: stages.append((e.stage, e.step)))
    assert ("validate", 1) not in stages and ("validate", 2) in stages  # it went on from epoch 2
    assert len(result.history) == 2


@pytest.mark.slow
def test_non_finite_loss_raises_a_typed_error(tiny_study, tmp_path):
    bad = DetectorTraining(**{**TINY.__dict__, "lr": 1e12, "warmup_steps": 1, "epochs": 2})
    with pytest.raises(TrainingError, match="loss became"):
        run(train_detector([tiny_study], tmp_path / "models", bad, model_id="nan"))
    assert not (tmp_path / "models" / "nan").exists()


def _package(tmp_path: Path, config: DetectorConfig | None = None) -> Path:
    config = config or DetectorConfig(geometry=InputGeometry(1024, 128))
    model = build_detector(config)
    return write_package(tmp_path / "pkg", kind="detector", state=model.state_dict(), architecture=config.to_json(),
                         classes=["vertebra"], input_spec={"side": 1024, "size": 128})


def test_package_round_trip(tmp_path):
    path = _package(tmp_path)
    detector = VertebraDetector.from_package(path, precision="fp32")
    assert detector.config.geometry.size == 128 and detector.config.rpn_post_nms_top_n_test == 100
    with pytest.raises(ModelPackageError, match="already exists"):
        _package(tmp_path)


@pytest.mark.slow
def test_broken_packages_raise_typed_errors(tmp_path):
    path = _package(tmp_path)
    manifest = json.loads((path / MANIFEST).read_text())
    cases = {
        "not json": lambda p: (p / MANIFEST).write_text("{"),
        "wrong kind": lambda p: (p / MANIFEST).write_text(json.dumps({**manifest, "kind": "classifier"})),
        "future": lambda p: (p / MANIFEST).write_text(json.dumps({**manifest, "format_version": 99})),
        "other arch": lambda p: (p / MANIFEST).write_text(
            json.dumps({**manifest, "architecture": {**manifest["architecture"], "backbone": "mobilenet_v2"}})),
        "bad backbone": lambda p: (p / MANIFEST).write_text(
            json.dumps({**manifest, "architecture": {**manifest["architecture"], "backbone": "vgg"}})),
        "truncated weights": lambda p: (p / WEIGHTS).write_bytes((p / WEIGHTS).read_bytes()[:1000]),
        "no weights": lambda p: (p / WEIGHTS).unlink(),
        "empty weights": lambda p: save_file({"x": torch.zeros(1)}, str(p / WEIGHTS)),
    }
    for name, damage in cases.items():
        broken = tmp_path / name.replace(" ", "-")
        broken.mkdir()
        for file in path.iterdir():
            (broken / file.name).write_bytes(file.read_bytes())
        damage(broken)
        with pytest.raises(ModelPackageError) as error:
            VertebraDetector.from_package(broken, precision="fp32")
        assert str(broken) in str(error.value), name
    with pytest.raises(ModelPackageError, match="no such"):
        VertebraDetector.from_package(tmp_path / "missing")


class _Hostile:
    def __reduce__(self):
        return (Path.touch, (Path(_Hostile.marker),))


def test_a_hostile_pickle_handed_in_as_weights_is_never_executed(tmp_path):
    path = _package(tmp_path)
    _Hostile.marker = str(tmp_path / "pwned")
    (path / WEIGHTS).write_bytes(pickle.dumps({"model": _Hostile()}))
    with pytest.raises(ModelPackageError, match="safetensors"):
        VertebraDetector.from_package(path, precision="fp32")
    assert not (tmp_path / "pwned").exists()
    # The checkpoint reader refuses it too (weights_only=True), so resuming cannot run it either.
    from core.training.checkpoints import CHECKPOINT, load_checkpoint

    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / CHECKPOINT).write_bytes(pickle.dumps({"model": _Hostile(), "epoch": 1}))
    with pytest.raises(TrainingError):
        load_checkpoint(folder)
    assert not (tmp_path / "pwned").exists()

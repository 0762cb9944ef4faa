"""Classifier training pieces: the paper's resampling on a toy set, labels, augmentation, and a tiny run."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from core.annotations.model import Disease
from core.errors import TrainingError
from core.progress import run
from core.training.classification_data import (
    Augmentation,
    BoxSample,
    box_group,
    detector_normals,
    label_vector,
    resample,
)
from core.training.classification_engine import ClassifierTraining, train_classifier
from core.training.datasets import SliceRecord


def _samples(counts: dict[str, int]) -> list[BoxSample]:
    out = []
    for code, n in counts.items():
        diseases = frozenset() if code == "NORMAL" else frozenset(Disease(c) for c in code.split("+"))
        out += [BoxSample(0, i, label_vector(diseases)) for i in range(n)]
    return out


def test_labels_and_groups():
    assert label_vector(frozenset()).tolist() == [0, 0, 0, 0, 0, 1]
    assert label_vector(frozenset({Disease.OVCF, Disease.KD})).tolist() == [1, 0, 0, 1, 0, 0]
    assert box_group(label_vector(frozenset({Disease.OVCF, Disease.KD}))) == "KD"
    assert box_group(label_vector(frozenset({Disease.OF, Disease.PS}))) == "PS"
    assert box_group(label_vector(frozenset({Disease.OVCF}))) == "OVCF"
    assert box_group(label_vector(frozenset())) == "NORMAL"


def test_resampling_gives_the_paper_counts_on_a_toy_set():
    # 40 OVCF boxes: NORMAL down to 80, OF, SN, KD and PS each to 20 (up from 3 KD, down from 30 OF).
    samples = _samples({"NORMAL": 500, "OVCF": 40, "OF": 30, "SN": 5, "KD": 3, "PS": 12})
    chosen = resample(samples, np.random.default_rng(0))
    groups = Counter(samples[i].group for i in chosen)
    assert groups == {"NORMAL": 80, "OVCF": 40, "OF": 20, "SN": 20, "KD": 20, "PS": 20}
    normals = [i for i in chosen if samples[i].group == "NORMAL"]
    assert len(set(normals)) == 80  # under-sampling draws without replacement
    assert len({i for i in chosen if samples[i].group == "KD"}) == 3  # over-sampling repeats the 3 KD boxes


def test_resampling_counts_a_multi_disease_box_in_its_rarest_group_and_keeps_its_labels():
    samples = _samples({"NORMAL": 100, "OVCF": 10, "OVCF+KD": 2})
    chosen = resample(samples, np.random.default_rng(1))
    groups = Counter(samples[i].group for i in chosen)
    assert groups["OVCF"] == 10 and groups["KD"] == 5
    assert all(samples[i].labels[0] == 1 for i in chosen if samples[i].group == "KD")  # still OVCF too


def test_resampling_without_ovcf_keeps_every_box_once():
    samples = _samples({"NORMAL": 7, "OF": 2})
    assert sorted(resample(samples, np.random.default_rng(2))) == list(range(9))


def test_detector_normals_are_boxes_away_from_every_disease_box():
    record = SliceRecord(Path("."), "c", "s", 100, 100, np.array([[10.0, 10, 40, 40]]),
                         (frozenset({Disease.OVCF}),), ("L1",))
    detected = np.array([[12.0, 12, 38, 38], [10, 50, 40, 80], [30, 30, 60, 60]])
    added = detector_normals(record, detected)
    # The first overlaps the OVCF box (IoM 1), the third covers 1/9 of it (IoM 100/900 < 0.5): kept as NORMAL.
    assert added.boxes.tolist() == [[10, 10, 40, 40], [10, 50, 40, 80], [30, 30, 60, 60]]
    assert added.diseases == (frozenset({Disease.OVCF}), frozenset(), frozenset())


def test_augmentation_keeps_shape_and_range_and_is_seeded():
    patches = torch.rand(6, 1, 32, 32)
    one = Augmentation().apply(patches, torch.Generator().manual_seed(3))
    two = Augmentation().apply(patches, torch.Generator().manual_seed(3))
    assert one.shape == patches.shape and torch.equal(one, two)
    assert float(one.min()) >= 0 and float(one.max()) <= 1
    assert not torch.allclose(one, patches)


TINY = ClassifierTraining(arch="resnet18", size=64, epochs=2, batch_size=16, lr_step=1, patches_per_box=1,
                          val_fraction=0.34, precision="fp32", warmup_steps=1, seed=5, endplate_steps=6)


@pytest.fixture(scope="module")
def small_study(tmp_path_factory) -> Path:
    from core.synthetic.generate import SynthOptions, generate_study

    root = tmp_path_factory.mktemp("cls") / "study"
    from core.synthetic.diseases import PAPER_PREVALENCE

    # Schmorl's nodes at 0.25 per box, so that the endplate head has nodes to learn from
    run(generate_study(root, SynthOptions(cases=3, seed=4, slices_per_case=2, readers=0,
                                          prevalence={**PAPER_PREVALENCE, Disease.SN: 0.25})))
    return root


@pytest.mark.slow
def test_tiny_classifier_trains_publishes_thresholds_and_resumes(small_study, tmp_path):
    from core.models.classifier import VertebraClassifier
    from core.models.package import read_manifest

    job = train_classifier([small_study], tmp_path, TINY, model_id="c")
    for event in job:
        if event.stage == "validate":  # epoch 1 checkpointed: stop
            job.close()
            break
    assert not (tmp_path / "c").exists() and (tmp_path / ".training" / "c" / "checkpoint.pt").is_file()
    stages = []
    result = run(train_classifier([small_study], tmp_path, TINY, model_id="c", resume=True),
                 lambda e: stages.append((e.stage, e.step)))
    assert ("validate", 1) not in stages and ("validate", 2) in stages
    manifest = read_manifest(result.package, kind="classifier")
    thresholds = manifest.architecture["thresholds"]
    assert set(thresholds) == {"OVCF", "OF", "SN", "KD", "PS", "NORMAL"}
    assert all(0 <= t <= 1 for t in thresholds.values())
    assert manifest.training["threshold_rule"].startswith("per class")
    assert manifest.training["endplate_head"] == "trained" and manifest.architecture["endplate"]["height"] == 32
    assert ("endplate", 6) in stages
    classifier = VertebraClassifier.from_package(result.package, precision="fp32")
    assert classifier.endplate is not None
    [probabilities] = classifier.predict([np.zeros((120, 100), np.uint8)], [np.array([[10, 10, 50, 40.0]])])
    assert probabilities.shape == (1, 6) and np.all((probabilities >= 0) & (probabilities <= 1))


@pytest.mark.slow
def test_training_with_appearance_draws_the_jitter_of_the_grain_asked(small_study, tmp_path, monkeypatch):
    from core.models.package import read_manifest
    from core.training import classification_engine
    from core.training.classification_data import APPEARANCE_GRAIN, Augmentation

    made: list[Augmentation] = []

    def recorded(**kwargs) -> Augmentation:
        made.append(Augmentation(**kwargs))
        return made[-1]

    monkeypatch.setattr(classification_engine, "Augmentation", recorded)
    for where in ("fine", "coarse"):
        made.clear()
        settings = ClassifierTraining(**{**TINY.__dict__, "epochs": 1, "appearance": True, "appearance_grain": where,
                                         "endplate": False})
        result = run(train_classifier([small_study], tmp_path / where, settings, model_id="j"))
        assert made and all(a.appearance is APPEARANCE_GRAIN[where] for a in made)
        recorded_settings = read_manifest(result.package, kind="classifier").training["settings"]
        assert recorded_settings["appearance"] is True and recorded_settings["appearance_grain"] == where


def test_settings_that_would_fail_late_are_refused_before_any_training(small_study, tmp_path):
    for steps in (0, -3):
        settings = ClassifierTraining(**{**TINY.__dict__, "endplate_steps": steps})
        with pytest.raises(TrainingError, match=r"at least one training step.*--no-endplate"):
            run(train_classifier([small_study], tmp_path, settings, model_id="e"))
    settings = ClassifierTraining(**{**TINY.__dict__, "appearance": True, "appearance_grain": "medium"})
    with pytest.raises(TrainingError, match="grain is fine or coarse, not 'medium'"):
        run(train_classifier([small_study], tmp_path, settings, model_id="e"))
    for share in (-0.1, 1.5):
        settings = ClassifierTraining(**{**TINY.__dict__, "edge_cut": share})
        with pytest.raises(TrainingError, match="cut at an edge is between 0 and 1"):
            run(train_classifier([small_study], tmp_path, settings, model_id="e"))
    for sd in (-0.5, 3.5):
        settings = ClassifierTraining(**{**TINY.__dict__, "smoothing": sd})
        with pytest.raises(TrainingError, match=rf"smoothing is a Gaussian SD from 0 to 3\.0 pixels, not {sd}"):
            run(train_classifier([small_study], tmp_path, settings, model_id="e"))
    assert not any(tmp_path.iterdir())  # nothing trained, nothing written


@pytest.mark.slow
def test_non_finite_loss_raises_a_typed_error(small_study, tmp_path):
    bad = ClassifierTraining(**{**TINY.__dict__, "lr": 1e30, "epochs": 1})
    with pytest.raises(TrainingError, match="loss became"):
        run(train_classifier([small_study], tmp_path, bad, model_id="nan"))
    assert not (tmp_path / "nan").exists()


def test_no_annotations_is_a_clear_error(tmp_path):
    from core.study.layout import Study

    Study.create(tmp_path / "empty")
    with pytest.raises(TrainingError, match="no annotated vertebrae"):
        run(train_classifier([tmp_path / "empty"], tmp_path / "m", TINY))


def test_cut_at_edge_moves_one_side_in_and_keeps_half_to_nine_tenths():
    from core.training.classification_data import EDGE_KEEP, cut_at_edge

    rng = np.random.default_rng(0)
    boxes = np.tile([[100.0, 200.0, 160.0, 250.0]], (400, 1))  # 60 wide, 50 high
    np.testing.assert_array_equal(cut_at_edge(boxes, 0.0, rng), boxes)
    cut = cut_at_edge(boxes, 1.0, np.random.default_rng(1))
    moved = cut != boxes
    assert (moved.sum(axis=1) == 1).all()  # exactly one side of every box
    assert (cut[:, :2] >= boxes[:, :2]).all() and (cut[:, 2:] <= boxes[:, 2:]).all()  # inside the box given
    kept = np.where(moved[:, [1, 3]].any(axis=1), (cut[:, 3] - cut[:, 1]) / 50, (cut[:, 2] - cut[:, 0]) / 60)
    assert EDGE_KEEP[0] <= kept.min() and kept.max() <= EDGE_KEEP[1]
    sides = Counter(np.flatnonzero(row)[0] for row in moved)  # 0 left, 1 top, 2 right, 3 bottom moved
    assert sides[1] + sides[3] > 3 * (sides[0] + sides[2])  # mostly the top or the bottom, as a slice ends
    np.testing.assert_array_equal(cut, cut_at_edge(boxes, 1.0, np.random.default_rng(1)))
    some = cut_at_edge(boxes, 0.25, np.random.default_rng(2))
    assert 60 < (some != boxes).any(axis=1).sum() < 140


def test_a_patch_cut_at_an_edge_shows_nothing_beyond_the_cut(tmp_path):
    from core.models.extraction import PatchGeometry
    from core.training.classification_data import SliceCache, patch_batch

    image = np.full((200, 200), 200, dtype=np.uint8)
    record = SliceRecord(tmp_path, "case-0001", "s001", 200, 200, np.array([[70.0, 60.0, 130.0, 140.0]]),
                         (frozenset(),), (None,))
    cache = SliceCache()
    cache.put(record, image)
    geometry = PatchGeometry(canvas=128, size=128, shift=0.0, scale_min=1.0, scale_max=1.0)
    sample = BoxSample(0, 0, np.zeros(6, dtype=np.float32))
    whole, _ = patch_batch([sample], [record], cache, geometry, torch.device("cpu"), rng=np.random.default_rng(0))
    cut, _ = patch_batch([sample], [record], cache, geometry, torch.device("cpu"), rng=np.random.default_rng(0),
                         edge_cut=1.0)
    lit = [(p[0, 0] > p[0, 0].min()).sum().item() for p in (whole, cut)]  # pixels of the box in view
    assert 0.45 * lit[0] <= lit[1] <= 0.92 * lit[0]


def test_training_patches_come_from_the_slice_smoothed_as_in_use(tmp_path):
    """``smoothing``: the patch is cut from the slice smoothed as the classifier smooths it at inference (the same
    function), not from the raw slice; none asked, the raw slice's."""
    from core.models.classifier import grey_tensor, normalise, smoothed
    from core.models.extraction import PatchGeometry, extract_patches
    from core.training.classification_data import SliceCache, patch_batch

    image = np.random.default_rng(3).integers(0, 256, (160, 160), dtype=np.uint8)
    record = SliceRecord(tmp_path, "case-0001", "s001", 160, 160, np.array([[50.0, 40.0, 110.0, 120.0]]),
                         (frozenset(),), (None,))
    cache = SliceCache()
    cache.put(record, image)
    geometry = PatchGeometry(canvas=96, size=96)
    sample = BoxSample(0, 0, np.zeros(6, dtype=np.float32))
    raw, _ = patch_batch([sample], [record], cache, geometry, torch.device("cpu"))
    smooth, _ = patch_batch([sample], [record], cache, geometry, torch.device("cpu"), smoothing=1.5)
    grey = grey_tensor(image, torch.device("cpu"))
    expected = normalise(extract_patches(smoothed(grey, 1.5), record.boxes, geometry))
    assert torch.allclose(smooth, expected, atol=1e-6)
    assert torch.allclose(raw, normalise(extract_patches(grey, record.boxes, geometry)), atol=1e-6)
    inside = (slice(None), 0, slice(30, 66), slice(30, 66))
    assert smooth[inside].std() < 0.5 * raw[inside].std()  # white noise, smoothed over 1.5 px
    # A large slice, one box on each of three records (near a corner, in the middle, at the far corner): the patches,
    # cut from the part of the slice they read smoothed alone, are those of the whole slice smoothed, at the slice's
    # edges too, whatever the patch geometry.
    big = np.random.default_rng(4).integers(0, 256, (420, 500), dtype=np.uint8)
    boxes = np.array([[2.0, 3.0, 40.0, 50.0], [230.0, 180.0, 290.0, 240.0], [455.0, 370.0, 499.0, 419.0]])
    records = [SliceRecord(tmp_path, "case-0002", f"s00{i}", 500, 420, boxes[i : i + 1], (frozenset(),), (None,))
               for i in range(3)]
    for r in records:
        cache.put(r, big)
    whole = smoothed(grey_tensor(big, torch.device("cpu")), 1.5)
    picked = [BoxSample(i, 0, np.zeros(6, dtype=np.float32)) for i in range(3)]
    for geometry in (PatchGeometry(canvas=96, size=96), PatchGeometry(canvas=96, size=64, fit=True, context=0.2)):
        cut, _ = patch_batch(picked, records, cache, geometry, torch.device("cpu"), smoothing=1.5)
        assert torch.allclose(cut, normalise(extract_patches(whole, boxes, geometry)), atol=1e-5)

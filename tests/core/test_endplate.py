"""The endplate head: band geometry, the network's multiple-instance score, that it learns a notch in an endplate,
and that packages carry it (and that packages without one still load)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from core.annotations.model import CLASS_CODES, Disease
from core.models.classifier import ENDPLATE_PREFIX, SN_COLUMN, ClassifierConfig, VertebraClassifier, build_classifier
from core.models.devices import inference_compute
from core.models.endplate import EndplateGeometry, EndplateNet, band_boxes, extract_bands
from core.models.extraction import PatchGeometry
from core.models.package import write_package
from core.progress import run
from core.training.classification_data import SliceCache
from core.training.datasets import SliceRecord
from core.training.endplate_engine import EndplateTraining, predict_endplate, train_endplate

GEOMETRY = EndplateGeometry()


def test_bands_cover_both_endplates_with_the_set_margins():
    box = torch.tensor([[100.0, 200.0, 160.0, 240.0]])  # 60 x 40
    top, bottom = band_boxes(box, GEOMETRY)
    assert top.tolist() == pytest.approx([94.0, 194.0, 166.0, 214.0])  # 0.15 x 40 above, 0.35 x 40 below the top
    assert bottom.tolist() == pytest.approx([94.0, 226.0, 166.0, 246.0])


def test_the_lower_band_is_turned_so_both_show_the_endplate_on_top():
    """A bright line just inside the upper edge, and one just inside the lower edge: in both bands it lies in the
    same rows, near the band's top (beyond-the-edge part first)."""
    image = torch.zeros(1, 300, 300)
    image[0, 100:140, 100:160] = 0.3
    image[0, 101:103, 100:160] = 1.0  # upper endplate
    image[0, 137:139, 100:160] = 1.0  # lower endplate
    bands = extract_bands(image, np.array([[100.0, 100.0, 160.0, 140.0]]), GEOMETRY)
    assert bands.shape == (1, 2, 32, 96)
    upper_row = int(bands[0, 0].mean(dim=1).argmax())
    lower_row = int(bands[0, 1].mean(dim=1).argmax())
    assert abs(upper_row - lower_row) <= 1
    assert 8 <= upper_row <= 14  # 0.15 / 0.5 of the band lies beyond the edge: the edge is at row 9.6
    for band in bands[0]:  # each band standardised
        assert float(band.mean()) == pytest.approx(0.0, abs=1e-4)


def test_bands_of_no_boxes_and_of_a_flat_image_are_finite():
    assert extract_bands(torch.rand(1, 50, 50), np.zeros((0, 4)), GEOMETRY).shape == (0, 2, 32, 96)
    flat = extract_bands(torch.full((1, 80, 80), 0.5), np.array([[10.0, 10.0, 40.0, 30.0]]), GEOMETRY)
    assert torch.isfinite(flat).all() and float(flat.abs().max()) == 0.0


def test_the_box_score_is_the_larger_band_score():
    torch.manual_seed(0)
    net = EndplateNet(EndplateGeometry(channels=(4, 8))).eval()
    bands = torch.randn(5, 2, 32, 96)
    with torch.no_grad():
        per_band = net.band_logits(bands)
        assert torch.allclose(net(bands), per_band.amax(dim=1))
        swapped = net(bands.flip(1))  # which band holds the node does not matter
    assert torch.allclose(net(bands), swapped)


@pytest.mark.parametrize("bad", [{"height": 4}, {"inside": 0.0}, {"outside": 1.5}, {"channels": ()}])
def test_a_bad_band_geometry_is_refused(bad):
    with pytest.raises(ValueError):
        EndplateGeometry(**bad)


def _phantom_records(count: int, seed: int) -> tuple[list[SliceRecord], SliceCache]:
    """Slices of three bright-rimmed bodies each; a Schmorl's node (a dark notch with a bright rim, in the upper or
    lower endplate) in some; a dark blob just outside an endplate (disc gas) in others, as a confuser."""
    rng = np.random.default_rng(seed)
    cache = SliceCache()
    records = []
    for index in range(count):
        image = (rng.normal(90, 8, (160, 200))).clip(0, 255)
        boxes, diseases = [], []
        for k in range(3):
            x0, y0 = 20 + 60 * k + rng.integers(-3, 4), 50 + rng.integers(-6, 7)
            w, h = int(rng.integers(40, 50)), int(rng.integers(32, 42))
            image[y0:y0 + h, x0:x0 + w] = rng.normal(140, 8, (h, w))
            image[y0:y0 + 3, x0:x0 + w] = 230
            image[y0 + h - 3:y0 + h, x0:x0 + w] = 230
            node = rng.random() < 0.35
            cx = x0 + int(rng.integers(w // 3, 2 * w // 3))
            yy, xx = np.mgrid[0:160, 0:200]
            if node:
                edge = y0 if rng.random() < 0.5 else y0 + h
                r = rng.uniform(4, 7)
                d = np.hypot(yy - edge, xx - cx)
                image[(d < r + 1.5) & (d >= r)] = 230
                image[d < r] = 60
            elif rng.random() < 0.4:
                edge = y0 - 5 if rng.random() < 0.5 else y0 + h + 5
                image[np.hypot((yy - edge) * 2, xx - cx) < 6] = 20
            boxes.append([x0, y0, x0 + w, y0 + h])
            diseases.append(frozenset({Disease.SN}) if node else frozenset())
        record = SliceRecord(Path("/phantom"), f"c{seed}-{index}", "s1", 200, 160, np.array(boxes, float),
                             tuple(diseases), (None, None, None))
        cache.put(record, image.astype(np.uint8))
        records.append(record)
    return records, cache


@pytest.mark.slow
def test_the_head_learns_a_notch_in_an_endplate_and_not_gas_beside_it():
    train, cache = _phantom_records(40, seed=1)
    val, val_cache = _phantom_records(20, seed=2)
    cache._images.update(val_cache._images)
    small = EndplateGeometry(channels=(8, 16, 32))
    settings = EndplateTraining(steps=80, batch_size=24, seed=3)
    events = []
    trained = run(train_endplate(train, val, small, settings, cache=cache), events.append)
    assert trained is not None and trained.positives >= 20
    assert trained.auc is not None and trained.auc > 0.95
    assert len(trained.validation) == 60 and [e.step for e in events if e.stage == "endplate"][-1] == 80
    # The kept weights give the validation probabilities it reports.
    model = EndplateNet(small)
    model.load_state_dict(trained.state)
    again = predict_endplate(model, val, cache, small, torch.device("cpu"))
    assert np.allclose(again, trained.validation, atol=1e-5)


def test_too_few_nodes_train_no_head():
    records, cache = _phantom_records(6, seed=4)
    clean = [SliceRecord(r.study, r.case, r.slice_id, r.width, r.height, r.boxes, (frozenset(),) * 3, r.levels)
             for r in records]
    assert run(train_endplate(clean, clean, GEOMETRY, EndplateTraining(steps=5), cache=cache)) is None


def _package(tmp_path: Path, endplate: bool) -> tuple[Path, EndplateNet | None]:
    torch.manual_seed(0)
    geometry = EndplateGeometry(channels=(4, 8)) if endplate else None
    config = ClassifierConfig(arch="resnet18", patch=PatchGeometry(canvas=64, size=48, fit=True, context=0.1),
                              endplate=geometry)
    model = build_classifier(config, use_imagenet=False)
    state = dict(model.state_dict())
    head = None
    if geometry is not None:
        head = EndplateNet(geometry)
        state.update({ENDPLATE_PREFIX + k: v for k, v in head.state_dict().items()})
    path = tmp_path / ("with" if endplate else "without")
    write_package(path, kind="classifier", state=state, architecture=config.to_json(), classes=list(CLASS_CODES),
                  input_spec={"canvas": 64, "size": 48})
    return path, head


def test_a_package_with_a_head_gives_the_heads_sn_probability(tmp_path):
    path, head = _package(tmp_path, endplate=True)
    classifier = VertebraClassifier.from_package(path, device="cpu", precision="fp32")
    assert classifier.endplate is not None
    image = np.random.default_rng(0).integers(0, 255, (120, 160), dtype=np.uint8)
    boxes = np.array([[20.0, 30.0, 70.0, 70.0], [80.0, 40.0, 130.0, 75.0]])
    [probabilities] = classifier.predict([image], [boxes])
    bands = extract_bands(torch.from_numpy(image).float()[None] / 255, boxes, classifier.config.endplate)
    with torch.no_grad():
        expected = torch.sigmoid(head.eval()(bands)).numpy()
    assert np.allclose(probabilities[:, SN_COLUMN], expected, atol=1e-5)
    assert np.allclose(classifier.endplate_probabilities(image, boxes), expected, atol=1e-5)
    # Without the head the SN column is the main network's, which differs.
    plain = VertebraClassifier(classifier.model, ClassifierConfig.from_json(
        {**classifier.config.to_json(), "endplate": None}), inference_compute("cpu", "fp32"))
    [main_only] = plain.predict([image], [boxes])
    assert np.allclose(np.delete(main_only, SN_COLUMN, 1), np.delete(probabilities, SN_COLUMN, 1), atol=1e-5)
    assert not np.allclose(main_only[:, SN_COLUMN], probabilities[:, SN_COLUMN])


def test_a_package_without_a_head_still_loads(tmp_path):
    path, _ = _package(tmp_path, endplate=False)
    classifier = VertebraClassifier.from_package(path, device="cpu", precision="fp32")
    assert classifier.endplate is None and classifier.config.endplate is None
    [probabilities] = classifier.predict([np.zeros((80, 80), np.uint8)], [np.array([[10.0, 10.0, 50.0, 40.0]])])
    assert probabilities.shape == (1, 6)


def test_a_head_missing_from_the_weights_is_a_clear_package_error(tmp_path):
    from core.errors import ModelPackageError
    from core.models.package import read_manifest, read_weights

    path, _ = _package(tmp_path, endplate=True)
    manifest = read_manifest(path)
    cut = tmp_path / "cut"
    write_package(cut, kind="classifier", state={k: v for k, v in read_weights(path).items()
                                                 if not k.startswith(ENDPLATE_PREFIX)},
                  architecture=manifest.architecture, classes=list(CLASS_CODES), input_spec=manifest.input)
    with pytest.raises(ModelPackageError, match="missing") as caught:
        VertebraClassifier.from_package(cut, device="cpu")
    assert str(cut) in str(caught.value)


def test_a_retrain_without_enough_nodes_keeps_the_parents_head(tmp_path):
    """Fine-tuning on corrected cases with no Schmorl's node in them keeps the parent's head and scores the
    validation boxes with it; with nodes, it trains a head starting from the parent's."""
    from core.models.devices import Compute
    from core.training.classification_engine import ClassifierTraining, _endplate_head

    records, cache = _phantom_records(8, seed=6)
    clean = [SliceRecord(r.study, r.case, r.slice_id, r.width, r.height, r.boxes, (frozenset(),) * 3, r.levels)
             for r in records]
    small = EndplateGeometry(channels=(4, 8))
    config = ClassifierConfig(arch="resnet18", endplate=small)
    torch.manual_seed(1)
    parent = {k: v.clone() for k, v in EndplateNet(small).state_dict().items()}
    compute = Compute(torch.device("cpu"), None, False)
    settings = ClassifierTraining(endplate_steps=4, seed=2)
    kept = run(_endplate_head(clean, clean, config, settings, compute, cache, parent))
    assert kept is not None and kept.geometry == small and kept.state is parent and kept.validation.shape == (24,)
    assert kept.status == "kept from the parent"
    trained = run(_endplate_head(records, records, config, settings, compute, cache, parent))
    assert trained is not None and trained.state is not parent and trained.status == "trained"
    assert not all(torch.equal(trained.state[k], parent[k]) for k in parent)
    # No parent head and too few nodes: no head at all.
    assert run(_endplate_head(clean, clean, config, settings, compute, cache, None)) is None


@pytest.mark.slow
def test_train_endplate_adds_a_head_and_keeps_the_main_network_and_other_thresholds(tmp_path):
    from core.annotations.model import Disease as D
    from core.models.package import read_manifest, read_weights
    from core.synthetic.diseases import PAPER_PREVALENCE
    from core.synthetic.generate import SynthOptions, generate_study
    from core.training.classification_engine import add_endplate_head

    study = tmp_path / "study"
    run(generate_study(study, SynthOptions(cases=2, seed=40, slices_per_case=2, readers=0,
                                           prevalence={**PAPER_PREVALENCE, D.SN: 0.3})))
    torch.manual_seed(0)
    thresholds = {c: 0.3 + 0.1 * i for i, c in enumerate(CLASS_CODES)}
    config = ClassifierConfig(arch="resnet18", patch=PatchGeometry(canvas=64, size=48), thresholds=thresholds)
    source = tmp_path / "source"
    write_package(source, kind="classifier", state=build_classifier(config, use_imagenet=False).state_dict(),
                  architecture=config.to_json(), classes=list(CLASS_CODES), input_spec={"canvas": 64, "size": 48})
    result = run(add_endplate_head(source, [study], tmp_path / "out", validation=[study], steps=4, device="cpu"))
    manifest = read_manifest(result.package, kind="classifier")
    assert manifest.training["endplate_head"] == "added" and manifest.architecture["endplate"] is not None
    kept = {c: t for c, t in manifest.architecture["thresholds"].items() if c != "SN"}
    assert kept == pytest.approx({c: t for c, t in thresholds.items() if c != "SN"})
    old, new = read_weights(source), read_weights(result.package)
    assert all(torch.equal(old[k], new[k]) for k in old)
    assert any(k.startswith(ENDPLATE_PREFIX) for k in new)
    assert VertebraClassifier.from_package(result.package, device="cpu").endplate is not None


def test_smoothing_feeds_the_main_network_a_smoothed_slice_and_the_head_the_slice_as_it_is(tmp_path):
    """A configuration's ``smoothing``: the main network's probabilities are those of the slice smoothed by that
    Gaussian (the same as predicting on a slice smoothed beforehand), while the endplate head's SN probability is
    the raw slice's, unchanged."""
    from scipy import ndimage

    path, _ = _package(tmp_path, endplate=True)
    raw = VertebraClassifier.from_package(path, device="cpu", precision="fp32")
    smooth = VertebraClassifier(raw.model, replace(raw.config, smoothing=1.2), inference_compute("cpu", "fp32"),
                                endplate=raw.endplate)
    image = np.random.default_rng(1).integers(0, 255, (120, 160), dtype=np.uint8)
    boxes = np.array([[20.0, 30.0, 70.0, 70.0], [80.0, 40.0, 130.0, 75.0]])
    [as_is], [smoothed_run] = raw.predict([image], [boxes]), smooth.predict([image], [boxes])
    assert np.allclose(smoothed_run[:, SN_COLUMN], as_is[:, SN_COLUMN], atol=1e-6)
    others = np.delete(np.arange(6), SN_COLUMN)
    assert not np.allclose(smoothed_run[:, others], as_is[:, others], atol=1e-4)
    # The same as smoothing the slice first (scipy's Gaussian, reflected edges; only rounding apart).
    pre = ndimage.gaussian_filter(image.astype(np.float64), 1.2, mode="reflect", truncate=3.0)
    [on_pre] = raw.predict([np.clip(np.rint(pre), 0, 255).astype(np.uint8)], [boxes])
    assert np.allclose(on_pre[:, others], smoothed_run[:, others], atol=0.02)


def test_smoothing_is_checked_and_kept_in_the_manifest():
    assert ClassifierConfig.from_json({"arch": "resnet18"}).smoothing == 0.0  # packages from before it: none
    config = ClassifierConfig(arch="resnet18", smoothing=0.75)
    assert ClassifierConfig.from_json(config.to_json()).smoothing == 0.75
    for bad in (-0.1, 3.5, True, "1", float("nan")):
        with pytest.raises(ValueError, match=r"smoothing is a Gaussian SD from 0 to 3\.0 pixels"):
            ClassifierConfig(arch="resnet18", smoothing=bad)


def test_smoothed_keeps_the_mean_and_shrinks_white_noise():
    from core.models.classifier import smoothed

    noise = torch.from_numpy(np.random.default_rng(2).normal(0.5, 0.1, (1, 200, 200)).astype(np.float32))
    assert smoothed(noise, 0.0) is noise
    out = smoothed(noise, 1.0)
    assert out.shape == noise.shape
    assert abs(out.mean().item() - 0.5) < 0.005
    # A Gaussian of SD s leaves white noise's SD times 1 / (2 s sqrt(pi)): 0.28 at 1 px.
    assert 0.2 < out.std().item() / noise.std().item() < 0.36

"""A classifier's reference pixel spacing (``ClassifierConfig.spacing_mm``): each slice whose spacing is known is
resampled to that pixel size before the main network's patches are cut, in use, in validation and in training alike;
the endplate head still reads the slice as it is; a slice without a spacing is used as it is."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from core.annotations.model import CLASS_CODES
from core.models.classifier import (
    ENDPLATE_PREFIX,
    MAX_RESAMPLED_SIDE,
    MAX_RESAMPLING,
    MAX_SOURCE_SPACING_MM,
    SN_COLUMN,
    ClassifierConfig,
    VertebraClassifier,
    build_classifier,
    grey_tensor,
    normalise,
    resampled,
    resampling,
)
from core.models.devices import inference_compute
from core.models.endplate import EndplateGeometry, EndplateNet
from core.models.extraction import PatchGeometry, extract_patches
from core.models.package import write_package
from core.training.classification_data import BoxSample, SliceCache, patch_batch
from core.training.datasets import SliceRecord


def _classifier(tmp_path: Path, spacing_mm: float) -> VertebraClassifier:
    torch.manual_seed(0)
    geometry = EndplateGeometry(channels=(4, 8))
    config = ClassifierConfig(arch="resnet18", patch=PatchGeometry(canvas=64, size=48), endplate=geometry)
    state = dict(build_classifier(config, use_imagenet=False).state_dict())
    state.update({ENDPLATE_PREFIX + k: v for k, v in EndplateNet(geometry).state_dict().items()})
    write_package(tmp_path / "pkg", kind="classifier", state=state, architecture=config.to_json(),
                  classes=list(CLASS_CODES), input_spec={"canvas": 64, "size": 48})
    raw = VertebraClassifier.from_package(tmp_path / "pkg", device="cpu", precision="fp32")
    return VertebraClassifier(raw.model, replace(raw.config, spacing_mm=spacing_mm), inference_compute("cpu", "fp32"),
                              endplate=raw.endplate)


def test_the_resampled_size_follows_the_spacing_within_its_limits():
    assert resampling((0.8, 0.8), 0.6, (600, 700)) == (800, 933)  # coarser pixels: enlarged by 0.8 / 0.6
    assert resampling((0.5, 0.5), 1.0, (600, 700)) == (300, 350)  # finer: shrunk
    assert resampling((0.9, 0.6), 0.6, (100, 100)) == (150, 100)  # rows and columns each by their own
    assert resampling((0.603, 0.6), 0.6, (600, 700)) is None  # under 1 %: as it is
    for unknown in (None, (0.0, 0.6), (float("nan"), 0.6), (-1.0, 0.6)):
        assert resampling(unknown, 0.6, (600, 700)) is None
    assert resampling((0.8, 0.8), 0.0, (600, 700)) is None  # no reference: as it is
    # pixels coarser than any the models learnt from count as the coarsest (1 mm): enlarged no further than those
    assert MAX_SOURCE_SPACING_MM == 1.0
    assert resampling((1.5, 1.5), 0.6, (60, 90)) == resampling((1.0, 1.0), 0.6, (60, 90)) == (100, 150)
    assert resampling((30.0, 30.0), 0.2, (100, 100)) == (100 * MAX_RESAMPLING,) * 2  # never more than 4 times
    big = resampling((1.0, 1.0), 0.25, (3000, 2000))
    assert max(big) == MAX_RESAMPLED_SIDE and big[0] / big[1] == pytest.approx(1.5, abs=0.01)


def test_resampled_boxes_cover_the_same_structure():
    """A bright square resampled with its box: the box still frames it, in the new pixels."""
    image = torch.zeros(1, 100, 120)
    image[:, 40:60, 30:70] = 1.0
    boxes = np.array([[30.0, 40.0, 70.0, 60.0]])
    out, moved = resampled(image, boxes, (150, 180))
    assert out.shape == (1, 150, 180)
    assert np.allclose(moved, [[45.0, 60.0, 105.0, 90.0]])
    inside = out[0, 62:88, 47:103]
    assert inside.min() > 0.9 and out[0, :55].max() < 0.1
    same, kept = resampled(image, boxes, None)
    assert same is image and kept is boxes


def test_the_main_network_sees_the_resampled_slice_and_the_head_the_slice_as_it_is(tmp_path):
    classifier = _classifier(tmp_path, 0.6)
    plain = VertebraClassifier(classifier.model, replace(classifier.config, spacing_mm=0.0), classifier.compute,
                               endplate=classifier.endplate)
    image = np.random.default_rng(1).integers(0, 255, (120, 160), dtype=np.uint8)
    boxes = np.array([[20.0, 30.0, 70.0, 70.0], [80.0, 40.0, 130.0, 75.0]])
    [scaled] = classifier.predict([image], [boxes], spacings=[(0.9, 0.9)])
    [as_is] = plain.predict([image], [boxes])
    assert np.allclose(scaled[:, SN_COLUMN], as_is[:, SN_COLUMN], atol=1e-6)  # the head: the slice as it is
    others = np.delete(np.arange(6), SN_COLUMN)
    assert not np.allclose(scaled[:, others], as_is[:, others], atol=1e-4)
    # The same as resampling the slice beforehand, boxes with it, and predicting at its own scale.
    size = resampling((0.9, 0.9), 0.6, image.shape)
    tensor, moved = resampled(grey_tensor(image, torch.device("cpu")), boxes, size)
    pre = np.clip(np.rint(tensor[0].numpy() * 255), 0, 255).astype(np.uint8)
    [on_pre] = plain.predict([pre], [moved])
    assert np.allclose(on_pre[:, others], scaled[:, others], atol=0.02)
    # Without a known spacing (a PNG), or without spacings at all, the slice is used as it is.
    assert np.allclose(classifier.predict([image], [boxes], spacings=[None])[0], as_is, atol=1e-6)
    assert np.allclose(classifier.predict([image], [boxes])[0], as_is, atol=1e-6)


def test_the_reference_spacing_is_checked_and_kept_in_the_manifest():
    assert ClassifierConfig.from_json({"arch": "resnet18"}).spacing_mm == 0.0  # packages from before it: off
    config = ClassifierConfig(arch="resnet18", spacing_mm=0.6)
    assert ClassifierConfig.from_json(config.to_json()).spacing_mm == 0.6
    for bad in (-0.1, 0.1, 2.5, True, "0.6", float("nan"), float("inf")):
        with pytest.raises(ValueError, match=r"reference pixel spacing is 0 \(off\) or from 0\.2 to 2\.0 mm"):
            ClassifierConfig(arch="resnet18", spacing_mm=bad)


def test_training_patches_come_from_the_slice_resampled_as_in_use(tmp_path):
    """The training patch of a box on a slice of 0.9 mm pixels, for a reference of 0.6 mm, is the patch the classifier
    cuts in use from the slice resampled whole; a slice without a spacing gives the patch of the slice as it is."""
    image = np.random.default_rng(3).integers(0, 256, (200, 240), dtype=np.uint8)
    box = np.array([[60.0, 50.0, 120.0, 110.0]])
    record = SliceRecord(tmp_path, "case-0001", "s001", 240, 200, box, (frozenset(),), (None,))
    unknown = SliceRecord(tmp_path, "case-0001", "s002", 240, 200, box, (frozenset(),), (None,))
    cache = SliceCache()
    cache.put(record, image, (0.9, 0.9))
    cache.put(unknown, image)
    geometry = PatchGeometry(canvas=96, size=96)
    samples = [BoxSample(0, 0, np.zeros(6, dtype=np.float32)), BoxSample(1, 0, np.zeros(6, dtype=np.float32))]
    patches, _ = patch_batch(samples, [record, unknown], cache, geometry, torch.device("cpu"), spacing_mm=0.6)
    grey = grey_tensor(image, torch.device("cpu"))
    whole, moved = resampled(grey, box, resampling((0.9, 0.9), 0.6, image.shape))
    expected = normalise(extract_patches(whole, moved, geometry))
    assert torch.allclose(patches[:1], expected, atol=1e-4)  # only the part the patch reads, on the same grid
    assert torch.allclose(patches[1:], normalise(extract_patches(grey, box, geometry)), atol=1e-6)


@pytest.mark.parametrize("spacing", [(0.9, 0.7), (0.77, 0.77), (0.45, 0.45)])
@pytest.mark.parametrize("geometry", [PatchGeometry(canvas=96, size=96),
                                      PatchGeometry(canvas=96, size=64, fit=True, context=0.2)])
def test_training_patches_at_the_slices_edges_match_the_whole_slice_resampled(tmp_path, spacing, geometry):
    """Boxes near a corner, in the middle and at the far corner, enlarged (rows and columns apart) or shrunk."""
    image = np.random.default_rng(4).integers(0, 256, (300, 260), dtype=np.uint8)
    boxes = np.array([[2.0, 3.0, 40.0, 50.0], [100.0, 120.0, 160.0, 180.0], [200.0, 240.0, 259.0, 299.0]])
    records = [SliceRecord(tmp_path, "case-0001", f"s00{i}", 260, 300, boxes[i : i + 1], (frozenset(),), (None,))
               for i in range(3)]
    cache = SliceCache()
    for record in records:
        cache.put(record, image, spacing)
    samples = [BoxSample(i, 0, np.zeros(6, dtype=np.float32)) for i in range(3)]
    patches, _ = patch_batch(samples, records, cache, geometry, torch.device("cpu"), spacing_mm=0.6, smoothing=1.0)
    from core.models.classifier import smoothed

    whole, moved = resampled(grey_tensor(image, torch.device("cpu")), boxes, resampling(spacing, 0.6, image.shape))
    expected = normalise(extract_patches(smoothed(whole, 1.0), moved, geometry))
    assert torch.allclose(patches, expected, atol=1e-4)

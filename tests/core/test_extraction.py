"""The extraction module (VEModule): patch sizes, jitter ranges, and padding that keeps the aspect ratio."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from core.models.extraction import PatchGeometry, extract_patches, jitter_boxes

GEOMETRY = PatchGeometry()


def _image_with_box(width: int, height: int, box: tuple[int, int, int, int]) -> torch.Tensor:
    image = torch.zeros(1, height, width)
    x1, y1, x2, y2 = box
    image[0, y1:y2, x1:x2] = 1.0
    return image


def _extent(patch: torch.Tensor) -> tuple[int, int]:
    rows, cols = np.nonzero(patch[0].numpy() > 0.5)
    return int(cols.max() - cols.min() + 1), int(rows.max() - rows.min() + 1)


def test_patch_size_and_count():
    boxes = np.array([[10, 10, 60, 40], [100, 50, 180, 120]], dtype=float)
    jittered = jitter_boxes(boxes, GEOMETRY)
    assert jittered.shape == (10, 4)
    patches = extract_patches(torch.rand(1, 200, 300), jittered, GEOMETRY)
    assert patches.shape == (10, 1, 224, 224)


def test_test_mode_is_fixed_and_starts_with_the_box_itself():
    boxes = np.array([[10.0, 20.0, 60.0, 50.0]])
    one, two = jitter_boxes(boxes, GEOMETRY), jitter_boxes(boxes, GEOMETRY)
    assert np.array_equal(one, two)
    assert np.allclose(one[0], boxes[0])
    assert len({tuple(b) for b in one}) == 5


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_random_jitter_stays_within_the_paper_ranges(seed):
    boxes = np.array([[100.0, 100.0, 160.0, 140.0], [300.0, 50.0, 330.0, 120.0]])
    jittered = jitter_boxes(boxes, GEOMETRY, np.random.default_rng(seed)).reshape(2, 5, 4)
    for original, group in zip(boxes, jittered, strict=True):
        centre = (original[:2] + original[2:]) / 2
        size = original[2:] - original[:2]
        for box in group:
            assert np.all(np.abs((box[:2] + box[2:]) / 2 - centre) <= 10 + 1e-9)
            scale = (box[2:] - box[:2]) / size
            assert np.isclose(scale[0], scale[1]) and 0.9 - 1e-9 <= scale[0] <= 1.1 + 1e-9


@pytest.mark.parametrize(("width", "height"), [(60, 30), (30, 90), (50, 50), (150, 40)])
def test_padding_keeps_the_aspect_ratio_and_the_pixel_scale(width, height):
    """A box smaller than the 196 canvas is zero-padded, not stretched: its content keeps its shape, scaled only by
    the final 196 -> 224 resize."""
    box = (100, 80, 100 + width, 80 + height)
    image = _image_with_box(400, 300, box)
    [patch] = extract_patches(image, np.array([box], dtype=float), GEOMETRY)
    w, h = _extent(patch)
    factor = 224 / 196
    assert abs(w - width * factor) <= 2 and abs(h - height * factor) <= 2
    assert abs(w / h - width / height) <= 0.06 * (width / height)
    # Outside the box the patch is zero even where the image is not.
    image[:] = 1.0
    [patch] = extract_patches(image, np.array([box], dtype=float), GEOMETRY)
    assert _extent(patch) == (w, h)
    assert float(patch.sum()) == pytest.approx(w * h, rel=0.05)


def test_a_box_larger_than_the_canvas_is_centre_cropped():
    box = (20, 100, 320, 160)  # 300 px wide: wider than the 196 canvas
    image = _image_with_box(400, 300, box)
    [patch] = extract_patches(image, np.array([box], dtype=float), GEOMETRY)
    w, h = _extent(patch)
    assert w == 224  # the whole canvas width is inside the box
    assert abs(h - 60 * 224 / 196) <= 2


def test_outside_the_image_is_zero():
    image = torch.ones(1, 100, 100)
    [patch] = extract_patches(image, np.array([[-30.0, -30.0, 40.0, 40.0]]), GEOMETRY)
    w, h = _extent(patch)
    assert abs(w - 40 * 224 / 196) <= 2 and abs(h - 40 * 224 / 196) <= 2


def test_no_boxes_gives_an_empty_batch():
    assert extract_patches(torch.rand(1, 50, 50), np.zeros((0, 4)), GEOMETRY).shape == (0, 1, 224, 224)


def test_the_context_margin_keeps_an_endplate_lesion_that_the_jitter_would_cut_off():
    """A bright mark just above the box's top edge (a Schmorl's node on the upper endplate, with the box jittered
    down): the paper's crop zeroes it, a context margin of 0.2 keeps it, and the box's own pixels are the same."""
    image = torch.zeros(1, 300, 300)
    box = (100.0, 100.0, 180.0, 160.0)  # 80 x 60
    image[0, 100:160, 100:180] = 0.5
    image[0, 92:98, 130:150] = 1.0  # 2 to 8 px above the top edge
    plain, = extract_patches(image, np.array([box]), PatchGeometry())
    kept, = extract_patches(image, np.array([box]), PatchGeometry(context=0.2))
    assert float(plain.max()) == pytest.approx(0.5, abs=0.05)
    assert float(kept.max()) == pytest.approx(1.0, abs=0.05)
    inner = slice(60, 164)  # inside the box in both (the box spans about 86..206 x 78..146 of the 224 patch)
    assert torch.allclose(plain[:, 90:140, inner], kept[:, 90:140, inner])
    # The margin is a fraction of the box: 0.2 of 60 px is 12 px above and below, 16 px left and right.
    ones, = extract_patches(torch.ones(1, 300, 300), np.array([box]), PatchGeometry(context=0.2))
    w, h = _extent(ones)
    assert abs(w - 112 * 224 / 196) <= 2 and abs(h - 84 * 224 / 196) <= 2


@pytest.mark.parametrize("context", [-0.1, 1.5])
def test_a_context_margin_out_of_range_is_refused(context):
    with pytest.raises(ValueError, match="context"):
        PatchGeometry(context=context)


def test_old_manifests_without_a_context_read_as_the_papers_crop():
    from core.models.classifier import ClassifierConfig

    config = ClassifierConfig.from_json({"arch": "resnet18", "patch": {"canvas": 128, "size": 128, "count": 5,
                                                                         "shift": 10.0, "scale_min": 0.9,
                                                                         "scale_max": 1.1}})
    assert config.patch.context == 0.0
    assert ClassifierConfig.from_json(config.to_json()).patch == config.patch


FIT = PatchGeometry(canvas=128, size=96, context=0.1, fit=True)


@pytest.mark.parametrize(("width", "height"), [(30, 20), (60, 45), (20, 50), (240, 150)])
def test_fit_mode_scales_every_box_to_fill_the_patch_and_keeps_its_shape(width, height):
    """Small or large, a box's larger side plus its margins spans the whole patch; the other side keeps the
    box's aspect ratio."""
    box = (300, 250, 300 + width, 250 + height)
    image = _image_with_box(800, 600, box)
    [patch] = extract_patches(image, np.array([box], dtype=float), FIT)
    w, h = _extent(patch)
    inner = 96 / 1.2  # the box itself, inside a margin of 0.1 of its size on each side
    larger, smaller = max(width, height), min(width, height)
    assert abs(max(w, h) - inner) <= 2
    assert abs(min(w, h) - inner * smaller / larger) <= 2
    # With the whole image bright, the margins are kept as well: the larger side fills the patch.
    [patch] = extract_patches(torch.ones(1, 600, 800), np.array([box], dtype=float), FIT)
    assert max(_extent(patch)) == 96


def test_fit_mode_shows_the_same_vertebra_the_same_at_any_pixel_size():
    """A pattern drawn at two scales gives nearly the same patch: what the classifier sees no longer depends on
    the pixel size of the slice (the paper's fixed canvas shows the small one five times smaller)."""
    small = torch.zeros(1, 200, 200)
    small[0, 50:80, 50:90] = 0.5
    small[0, 50:55, 65:72] = 1.0  # a notch on the upper edge
    large = torch.nn.functional.interpolate(small[None], scale_factor=4, mode="nearest")[0]
    [a] = extract_patches(small, np.array([[50.0, 50.0, 90.0, 80.0]]), FIT)
    [b] = extract_patches(large, np.array([[200.0, 200.0, 360.0, 320.0]]), FIT)
    assert float((a - b).abs().mean()) < 0.03
    [c] = extract_patches(small, np.array([[50.0, 50.0, 90.0, 80.0]]), PatchGeometry(canvas=128, size=96))
    [d] = extract_patches(large, np.array([[200.0, 200.0, 360.0, 320.0]]), PatchGeometry(canvas=128, size=96))
    assert float((c - d).abs().mean()) > 0.1


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_fit_mode_jitter_shrinks_with_the_box(seed):
    """The translation stays the same share of the box's canvas as ``shift`` is of the fixed canvas."""
    boxes = np.array([[100.0, 100.0, 140.0, 130.0], [300.0, 50.0, 500.0, 250.0]])
    jittered = jitter_boxes(boxes, FIT, np.random.default_rng(seed)).reshape(2, 5, 4)
    for original, group in zip(boxes, jittered, strict=True):
        centre = (original[:2] + original[2:]) / 2
        limit = 10.0 * max(original[2:] - original[:2]) * 1.2 / 128
        for box in group:
            assert np.all(np.abs((box[:2] + box[2:]) / 2 - centre) <= limit + 1e-9)
    test_pattern = jitter_boxes(boxes[:1], FIT)
    assert np.abs((test_pattern[:, :2] + test_pattern[:, 2:]) / 2 - [120, 115]).max() == pytest.approx(
        0.6 * 10.0 * 40 * 1.2 / 128)


def test_old_manifests_without_fit_read_as_the_papers_fixed_canvas():
    from core.models.classifier import ClassifierConfig

    config = ClassifierConfig.from_json({"arch": "resnet18", "patch": {"canvas": 128, "size": 128, "context": 0.1}})
    assert config.patch.fit is False
    fitted = ClassifierConfig.from_json({"arch": "resnet18", "patch": FIT.to_json()})
    assert fitted.patch == FIT and fitted.to_json()["patch"]["fit"] is True

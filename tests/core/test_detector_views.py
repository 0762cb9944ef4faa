"""Test-time views of the detector: boxes found on a flipped input map back exactly, the views' boxes fuse into one
per vertebra at the best view's score, and ``detect`` runs the package's views (or the ones asked for)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from core.errors import ModelPackageError
from core.imaging.letterbox import InputGeometry
from core.models.detector import (
    VIEW_FLIPS,
    DetectorConfig,
    VertebraDetector,
    build_detector,
    fuse_views,
    unflip_boxes,
)
from core.models.devices import inference_compute
from core.models.package import MANIFEST, write_package

SIDE = 64


def _bright_box(image: torch.Tensor) -> list[float]:
    """The pixel-edge box of the pixels above one half in the first channel."""
    rows, cols = torch.nonzero(image[0] > 0.5, as_tuple=True)
    return [cols.min().item(), rows.min().item(), cols.max().item() + 1.0, rows.max().item() + 1.0]


@pytest.mark.parametrize("flip", VIEW_FLIPS)
def test_a_box_found_on_a_flipped_input_maps_back_to_the_input_exactly(flip):
    image = torch.zeros(3, SIDE, SIDE)
    image[:, 5:20, 40:61] = 1.0  # rows 5-19, columns 40-60: off-centre both ways
    seen = _bright_box(image.flip(flip) if flip else image)
    back = unflip_boxes(np.array([seen]), flip, SIDE)
    assert back.tolist() == [[40.0, 5.0, 61.0, 20.0]]
    if flip:  # the flipped view really saw it elsewhere
        assert seen != [40.0, 5.0, 61.0, 20.0]


def test_views_of_one_vertebra_fuse_into_one_box_at_the_best_score():
    one = (np.array([[10.0, 10.0, 30.0, 30.0], [50.0, 10.0, 70.0, 30.0]]), np.array([0.6, 0.3], dtype=np.float32))
    two = (np.array([[12.0, 10.0, 32.0, 30.0]]), np.array([0.9], dtype=np.float32))
    boxes, scores = fuse_views([one, two], duplicate_iom=0.7)
    assert scores.tolist() == pytest.approx([0.9, 0.3])  # best first; the box one view alone found is kept
    # the fused box is the score-weighted mean of the two views' boxes
    assert boxes[0] == pytest.approx([(10 * 0.6 + 12 * 0.9) / 1.5, 10, (30 * 0.6 + 32 * 0.9) / 1.5, 30])
    assert boxes[1].tolist() == [50.0, 10.0, 70.0, 30.0]


def test_a_view_gives_at_most_one_box_to_a_vertebra():
    # two boxes of the same view overlapping the seed stay apart: the weaker is then a duplicate (IoM) or its own
    same_view = (np.array([[10.0, 10.0, 30.0, 30.0], [11.0, 10.0, 31.0, 30.0]]), np.array([0.9, 0.8]))
    boxes, scores = fuse_views([same_view], duplicate_iom=1.0)  # no duplicate removal: both come back
    assert scores.tolist() == pytest.approx([0.9, 0.8]) and boxes.tolist() == same_view[0].tolist()
    boxes, scores = fuse_views([same_view], duplicate_iom=0.7)
    assert scores.tolist() == pytest.approx([0.9])


def test_boxes_that_barely_overlap_are_different_vertebrae():
    upper = (np.array([[10.0, 10.0, 30.0, 30.0]]), np.array([0.8]))
    lower = (np.array([[10.0, 22.0, 30.0, 42.0]]), np.array([0.7]))  # IoU 0.25 with the upper one
    boxes, scores = fuse_views([upper, lower], duplicate_iom=0.7)
    assert len(scores) == 2 and boxes.tolist() == [[10.0, 10.0, 30.0, 30.0], [10.0, 22.0, 30.0, 42.0]]


def test_no_box_in_any_view_fuses_to_nothing():
    empty = (np.zeros((0, 4)), np.zeros(0, dtype=np.float32))
    boxes, scores = fuse_views([empty, empty, empty, empty], duplicate_iom=0.7)
    assert boxes.shape == (0, 4) and scores.shape == (0,)


class _SureOnTheRight(nn.Module):
    """A stand-in detector: one box around the bright pixels, scored 0.9 when they lie in the right half of the input
    and 0.6 when in the left, so only a mirrored view of a left-sided body is sure of it."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []

    def forward(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        self.calls.append(len(images))
        out = []
        for image in images:
            box = _bright_box(image)
            score = 0.9 if box[0] >= image.shape[-1] / 2 else 0.6
            out.append({"boxes": torch.tensor([box]), "scores": torch.tensor([score])})
        return out


def _detector(views: int) -> tuple[VertebraDetector, _SureOnTheRight]:
    model = _SureOnTheRight()
    config = DetectorConfig(geometry=InputGeometry(SIDE, SIDE), test_views=views)
    return VertebraDetector(model, config, inference_compute("cpu", "fp32")), model


@pytest.mark.parametrize("views", [1, 2, 4])
def test_detect_fuses_the_views_in_the_slice_pixels(views):
    image = np.zeros((SIDE, 48), dtype=np.uint8)  # narrower than the letterbox: padded on both sides
    image[30:45, 4:20] = 255
    detector, model = _detector(views)
    [found] = detector.detect([image, image, image], threshold=0.0, batch_size=2)[:1]
    assert model.calls == [2 * views, views]  # each batch's slices and all their views in one call
    assert found.boxes.tolist() == [[4.0, 30.0, 20.0, 45.0]]  # back in the slice's own pixels
    assert found.scores.tolist() == pytest.approx([0.6 if views == 1 else 0.9])
    # at the paper's threshold one view keeps nothing; the mirrored view keeps the body
    assert len(detector.detect([image])[0]) == (0 if views == 1 else 1)


def _package(tmp_path, **architecture) -> object:
    config = DetectorConfig(geometry=InputGeometry(1024, 64), fpn_channels=16, box_representation=32)
    model = build_detector(config, use_imagenet=False)
    data = {**config.to_json(), **architecture}
    return write_package(tmp_path / "pkg", kind="detector", state=model.state_dict(), architecture=data,
                         classes=["vertebra"], input_spec={"side": 1024, "size": 64})


def test_a_package_keeps_its_views_and_a_caller_may_ask_for_others(tmp_path):
    path = _package(tmp_path, test_views=4)
    assert VertebraDetector.from_package(path, precision="fp32").config.test_views == 4
    assert VertebraDetector.from_package(path, precision="fp32", views=1).config.test_views == 1
    with pytest.raises(ModelPackageError, match="test_views"):
        VertebraDetector.from_package(path, precision="fp32", views=3)


def test_a_manifest_from_before_the_views_keeps_one_view(tmp_path):
    path = _package(tmp_path)
    manifest = json.loads((path / MANIFEST).read_text())
    del manifest["architecture"]["test_views"]
    (path / MANIFEST).write_text(json.dumps(manifest))
    assert VertebraDetector.from_package(path, precision="fp32").config.test_views == 1


@pytest.mark.parametrize("bad", [0, 3, 8, "4", None, 4.0])
def test_a_manifest_with_impossible_views_is_refused_naming_the_package(tmp_path, bad):
    path = _package(tmp_path, test_views=bad)
    with pytest.raises(ModelPackageError, match="test_views") as raised:
        VertebraDetector.from_package(path, precision="fp32")
    assert str(path) in str(raised.value)


def test_the_command_line_offers_the_views_the_detector_knows():
    from core.models.detector import TEST_VIEWS
    from desktop.cli import detect

    assert detect.TEST_VIEWS == TEST_VIEWS == (1, 2, 4)  # the parser's copy (it loads no PyTorch) is the same
    assert max(TEST_VIEWS) == len(VIEW_FLIPS)

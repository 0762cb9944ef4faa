"""The vertebra detector (the paper's VDModule): torchvision Faster R-CNN with one class, ``vertebra``.

Backbones: ResNet18 with a feature pyramid (the paper's default), MobileNetV2 (the paper's alternative) and
MobileNetV3-Large (fast on CPUs). The input is the paper's letterbox: a centre-crop and zero-pad to 1024 x 1024,
optionally scaled (the CPU training preset uses 512), never a resize that distorts the slice. Grey slices are
repeated to three channels.

At test time a detector may look at each slice in several views (``DetectorConfig.test_views``): as it is, mirrored
left-right, upside down, and both. The detectors train on every flip and quarter turn of the square (the paper's D4
augmentation), so each view is one they learnt from; a vertebra that any view finds with confidence is kept
(:func:`fuse_views`). On real CT the bundled demo detector is often unsure of a body in one view and sure of it in
another; the README gives the figures.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torchvision.models import resnet18
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN, mobilenet_backbone
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.ops import FrozenBatchNorm2d

from core.annotations.geometry import DETECTION_THRESHOLD, iom_matrix, iou_matrix
from core.errors import ModelPackageError
from core.imaging.letterbox import InputGeometry
from core.imaging.rendering import DEFAULT_RENDERING, check_rendering
from core.models.devices import Compute, inference_compute
from core.models.package import load_state, read_manifest
from core.models.weights import imagenet_state
from core.ranges import real_in, whole_in

log = logging.getLogger(__name__)

BACKBONES = ("resnet18", "mobilenet_v2", "mobilenet_v3_large")
CLASSES = ("vertebra",)
#: The test-time views, as the tensor dimensions flipped: none, left-right (width), upside down (height), both (a half
#: turn). ``test_views`` takes the first 1, 2 or 4 of them.
VIEW_FLIPS: tuple[tuple[int, ...], ...] = ((), (-1,), (-2,), (-2, -1))
TEST_VIEWS = (1, 2, 4)
#: Boxes of two views are one vertebra's when their IoU is above this (the usual detection match).
VIEW_MATCH_IOU = 0.55
#: Anchor sizes (full-resolution pixels) of the five pyramid levels P2…P6; scaled with the input.
FULL_ANCHORS = (32, 64, 128, 256, 512)


@dataclass(frozen=True)
class DetectorConfig:
    """Everything that defines a detector's architecture and its test-time settings (stored in the manifest)."""

    backbone: str = "resnet18"
    geometry: InputGeometry = field(default_factory=InputGeometry)
    fpn_from: int = 1  # first ResNet stage in the pyramid: 1 gives P2-P6 (torchvision's default), 2 gives P3-P6
    fpn_channels: int = 256  # torchvision's width of the pyramid (ResNet backbones)
    box_representation: int = 1024  # torchvision's box head: two fully connected layers of this width
    norm: str = "batch"  # "frozen" with ImageNet weights (as torchvision), "batch" when trained from scratch
    window: str = DEFAULT_RENDERING  # the rendering it learnt from: how a slice becomes its input (imaging.rendering)
    rpn_pre_nms_top_n_test: int = 1000
    rpn_post_nms_top_n_test: int = 1000
    box_detections_per_img: int = 100
    box_score_thresh: float = 0.05
    # Training-time sampling: a slice holds at most ~20 vertebrae, so fewer proposals and sampled boxes than
    # torchvision's defaults (2000 and 512) lose nothing and halve a training step on a CPU.
    rpn_pre_nms_top_n_train: int = 1000
    rpn_post_nms_top_n_train: int = 500
    box_batch_size_per_image: int = 128
    # Vertebral bodies barely overlap (truth boxes never reach an IoM of 0.3), so a detection lying mostly inside a
    # better-scored one (IoM > 0.7) is a duplicate of the same vertebra. (At 0.5, AP50 fell from 0.995 to 0.985 on
    # held-out phantoms: a crushed vertebra's small box can be half covered by its neighbour's.)
    duplicate_iom: float = 0.7
    # The sacrum model that anchors vertebra levels (core.models.levels), fitted on the training slices' levels.
    sacrum: Mapping[str, Any] | None = None
    # Views of each slice at test time (1, 2 or 4 of VIEW_FLIPS), fused by fuse_views. A manifest without it was
    # validated on one view, and keeps one.
    test_views: int = 1

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {self.backbone!r}: use {', '.join(BACKBONES)}")
        if type(self.test_views) is not int or self.test_views not in TEST_VIEWS:  # not a bool, nor 4.0
            raise ValueError(f"test_views is one of {', '.join(map(str, TEST_VIEWS))}, not {self.test_views!r}")
        if self.fpn_from not in (1, 2):
            raise ValueError("fpn_from is 1 (P2-P6) or 2 (P3-P6)")
        check_rendering(self.window)
        whole_in(self.fpn_channels, "fpn_channels", 8, 1024)
        whole_in(self.box_representation, "box_representation", 8, 8192)
        for name in ("rpn_pre_nms_top_n_test", "rpn_post_nms_top_n_test", "rpn_pre_nms_top_n_train",
                     "rpn_post_nms_top_n_train", "box_batch_size_per_image"):
            whole_in(getattr(self, name), name, 1, 10_000)
        whole_in(self.box_detections_per_img, "box_detections_per_img", 1, 1000)
        real_in(self.box_score_thresh, "box_score_thresh", 0.0, 1.0)
        real_in(self.duplicate_iom, "duplicate_iom", 0.0, 1.0)

    def anchor_sizes(self) -> tuple[tuple[int, ...], ...]:
        scaled = tuple(max(4, round(s * self.geometry.scale)) for s in FULL_ANCHORS)
        if self.backbone == "resnet18":
            return tuple((s,) for s in scaled[self.fpn_from - 1 :])
        return (scaled,) * 3  # MobileNet pyramids: two stages and a pooled level, every size on each

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["geometry"] = self.geometry.to_json()
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DetectorConfig:
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known}
        values["geometry"] = InputGeometry(**data.get("geometry", {}))
        return cls(**values)

    def fast_test_time(self) -> DetectorConfig:
        """Fewer proposals at test time: a slice has at most ~20 vertebrae (evaluation shows AP is unchanged)."""
        return replace(self, rpn_pre_nms_top_n_test=300, rpn_post_nms_top_n_test=100, box_detections_per_img=50)


def _norm_layer(config: DetectorConfig) -> type[nn.Module]:
    return FrozenBatchNorm2d if config.norm == "frozen" else nn.BatchNorm2d


def _resnet18_fpn(config: DetectorConfig, state: dict[str, torch.Tensor] | None) -> nn.Module:
    """ResNet18 with a feature pyramid of ``config.fpn_channels`` channels (torchvision's is 256). With ImageNet
    weights the stem and first stage stay frozen, as torchvision does; from scratch every layer trains."""
    body = resnet18(weights=None, norm_layer=_norm_layer(config))
    if state is not None:
        body.load_state_dict(state, strict=False)
        trainable = ("layer2", "layer3", "layer4")
        for name, parameter in body.named_parameters():
            parameter.requires_grad_(name.startswith(trainable))
    layers = [1, 2, 3, 4][config.fpn_from - 1 :]
    return BackboneWithFPN(
        body,
        return_layers={f"layer{k}": str(i) for i, k in enumerate(layers)},
        in_channels_list=[64 * 2 ** (k - 1) for k in layers],
        out_channels=config.fpn_channels,
    )


def _backbone(config: DetectorConfig, imagenet: Path | None, use_imagenet: bool) -> nn.Module:
    state = imagenet_state(config.backbone, imagenet) if use_imagenet else None
    if config.backbone == "resnet18":
        return _resnet18_fpn(config, state)
    backbone = mobilenet_backbone(backbone_name=config.backbone, weights=None, fpn=True, norm_layer=_norm_layer(config),
                                  trainable_layers=6 if state is None else 3)
    if state is not None:
        features = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
        backbone.body.load_state_dict(features, strict=False)
    return backbone


def build_detector(config: DetectorConfig, imagenet: Path | None = None, *, use_imagenet: bool = True) -> FasterRCNN:
    """A Faster R-CNN for ``config``. ImageNet weights come only from ``imagenet`` or the torch cache, and are not
    looked for when ``use_imagenet`` is false (a package's own weights follow)."""
    sizes = config.anchor_sizes()
    anchors = AnchorGenerator(sizes, ((0.5, 1.0, 2.0),) * len(sizes))
    side = config.geometry.size
    backbone = _backbone(config, imagenet if use_imagenet else None, use_imagenet)
    pooled = backbone.out_channels * 7 * 7  # torchvision's box RoI pooling is 7 x 7
    return FasterRCNN(
        backbone,
        box_head=TwoMLPHead(pooled, config.box_representation),
        box_predictor=FastRCNNPredictor(config.box_representation, len(CLASSES) + 1),
        min_size=side,
        max_size=side,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
        rpn_anchor_generator=anchors,
        rpn_pre_nms_top_n_test=config.rpn_pre_nms_top_n_test,
        rpn_post_nms_top_n_test=config.rpn_post_nms_top_n_test,
        box_detections_per_img=config.box_detections_per_img,
        box_score_thresh=config.box_score_thresh,
        rpn_pre_nms_top_n_train=config.rpn_pre_nms_top_n_train,
        rpn_post_nms_top_n_train=config.rpn_post_nms_top_n_train,
        box_batch_size_per_image=config.box_batch_size_per_image,
    )


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """A uint8 square input → a (3, H, W) float tensor in 0…1 (grey repeated to three channels)."""
    grey = torch.from_numpy(np.array(image, dtype=np.float32, copy=True)).div_(255.0)
    return grey.unsqueeze(0).expand(3, -1, -1)


def suppress_duplicates(boxes: np.ndarray, scores: np.ndarray, max_iom: float) -> np.ndarray:
    """Indices kept by a greedy suppression on IoM: best score first, drop a box whose IoM with a kept one is
    above ``max_iom``."""
    order = np.argsort(-scores, kind="stable")
    kept: list[int] = []
    for index in order:
        if kept and iom_matrix(boxes[[index]], boxes[kept]).max() > max_iom:
            continue
        kept.append(int(index))
    return np.array(kept, dtype=np.int64)


def postprocess(output: Mapping[str, torch.Tensor], config: DetectorConfig) -> tuple[np.ndarray, np.ndarray]:
    """A model output → (boxes, scores) in input pixels, duplicates of one vertebra removed."""
    boxes = output["boxes"].float().cpu().numpy().astype(np.float64)
    scores = output["scores"].float().cpu().numpy()
    if config.duplicate_iom < 1.0 and len(boxes):
        keep = suppress_duplicates(boxes, scores, config.duplicate_iom)
        boxes, scores = boxes[keep], scores[keep]
    return boxes, scores


def unflip_boxes(boxes: np.ndarray, flip: tuple[int, ...], side: int) -> np.ndarray:
    """Boxes found on a flipped ``side`` x ``side`` input, back in the input's own pixels (edges map exactly)."""
    out = np.array(boxes, dtype=np.float64).reshape(-1, 4)
    if -1 in flip:
        out[:, [0, 2]] = side - out[:, [2, 0]]
    if -2 in flip:
        out[:, [1, 3]] = side - out[:, [3, 1]]
    return out


def fuse_views(views: Sequence[tuple[np.ndarray, np.ndarray]], duplicate_iom: float) -> tuple[np.ndarray, np.ndarray]:
    """One detection per vertebra from several views' (boxes, scores), all in the same pixels.

    Best score first, a box gathers the best box of each view that overlaps it (IoU above :data:`VIEW_MATCH_IOU`)
    and nothing gathered is used again. The vertebra's box is the score-weighted mean of its group, its score the
    group's best: a body that any view finds with confidence is kept (the scores are not averaged, which would call a
    body unsure because one view missed it). Duplicates are then removed by IoM as for a single view."""
    boxes = np.concatenate([np.asarray(b, dtype=np.float64).reshape(-1, 4) for b, _ in views])
    scores = np.concatenate([np.asarray(s, dtype=np.float64).reshape(-1) for _, s in views])
    view = np.concatenate([np.full(len(s), i) for i, (_, s) in enumerate(views)])
    if not len(scores):
        return boxes, scores.astype(np.float32)
    order = np.argsort(-scores, kind="stable")
    overlaps = iou_matrix(boxes, boxes) > VIEW_MATCH_IOU
    free = np.ones(len(scores), dtype=bool)
    fused_boxes, fused_scores = [], []
    for seed in order:
        if not free[seed]:
            continue
        group: dict[int, int] = {}
        for other in order:  # best first, so the first of each view is its best
            if free[other] and overlaps[seed, other] and view[other] not in group:
                group[int(view[other])] = other
        members = np.fromiter(group.values(), dtype=np.int64)
        free[members] = False
        weights = scores[members]
        fused_boxes.append(boxes[seed] if len(members) == 1 else weights @ boxes[members] / weights.sum())
        fused_scores.append(weights.max())
    out_boxes, out_scores = np.array(fused_boxes), np.array(fused_scores, dtype=np.float32)
    if duplicate_iom < 1.0:
        keep = suppress_duplicates(out_boxes, out_scores, duplicate_iom)
        out_boxes, out_scores = out_boxes[keep], out_scores[keep]
    return out_boxes, out_scores


@dataclass(frozen=True)
class Detections:
    """Detected boxes (n, 4: x1, y1, x2, y2 in slice pixels) with their scores, best first."""

    boxes: np.ndarray
    scores: np.ndarray

    def above(self, threshold: float) -> Detections:
        keep = self.scores >= threshold
        return Detections(self.boxes[keep], self.scores[keep])

    def __len__(self) -> int:
        return len(self.scores)


class MixedPrecisionBackbone(nn.Module):
    """The backbone and pyramid (nearly all of the detector's work) under autocast; the region proposals and the box
    head then run in float32 on float32 features, so that box coordinates keep full precision (bfloat16 box
    regression costs localisation: COCO AP50:95 fell from 0.64 to 0.59 in our evaluation)."""

    def __init__(self, backbone: nn.Module, compute: Compute) -> None:
        super().__init__()
        self.body = backbone
        self.out_channels = backbone.out_channels
        self.compute = compute

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.compute.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with self.compute.autocast():
            features = self.body(images)
        return type(features)((name, value.float().contiguous()) for name, value in features.items())


class VertebraDetector:
    """A trained detector ready for inference on uint8 slices (the model's input representation)."""

    def __init__(self, model: FasterRCNN, config: DetectorConfig, compute: Compute, package: Path | None = None):
        self.config = config
        self.compute = compute
        self.package = package
        self.model = model.to(compute.device).eval()
        if compute.autocast_dtype is not None:
            if compute.channels_last:
                self.model.backbone = self.model.backbone.to(memory_format=torch.channels_last)
            self.model.backbone = MixedPrecisionBackbone(self.model.backbone, compute)

    @classmethod
    def from_package(cls, path: str | Path, *, device: str = "auto", precision: str = "auto",
                     fast: bool = True, views: int | None = None) -> VertebraDetector:
        """``views``: test-time views (1, 2 or 4) instead of the package's own setting."""
        manifest = read_manifest(path, kind="detector")
        try:
            config = DetectorConfig.from_json(manifest.architecture)
            if views is not None:
                config = replace(config, test_views=views)
        except (TypeError, ValueError) as exc:
            raise ModelPackageError(f"the manifest describes an unknown detector ({exc})", path) from exc
        if fast:
            config = config.fast_test_time()
        model = build_detector(config, use_imagenet=False)
        load_state(model, path)
        return cls(model, config, inference_compute(device, precision), Path(path))

    @torch.inference_mode()
    def detect(self, images: Sequence[np.ndarray], *, threshold: float = DETECTION_THRESHOLD,
               batch_size: int = 4) -> list[Detections]:
        """Boxes and scores for each uint8 slice, in its own pixel coordinates, at or above ``threshold``; with
        several test views, each slice's views go through the model in one batch and are fused."""
        geometry = self.config.geometry
        flips = VIEW_FLIPS[: self.config.test_views]
        results: list[Detections] = []
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            inputs = [to_tensor(geometry.image(image)).to(self.compute.device) for image in chunk]
            outputs = self.model([image.flip(flip) if flip else image for image in inputs for flip in flips])
            for index, image in enumerate(chunk):
                found = []
                for flip, output in zip(flips, outputs[index * len(flips) : (index + 1) * len(flips)], strict=True):
                    boxes, scores = postprocess(output, self.config)
                    found.append((unflip_boxes(boxes, flip, geometry.size), scores))
                boxes, scores = found[0] if len(found) == 1 else fuse_views(found, self.config.duplicate_iom)
                height, width = image.shape[:2]
                slice_boxes = geometry.from_input(boxes, width, height)
                keep = (scores >= threshold) & (slice_boxes[:, 2] > slice_boxes[:, 0]) & (
                    slice_boxes[:, 3] > slice_boxes[:, 1])
                results.append(Detections(slice_boxes[keep], scores[keep]))
        return results

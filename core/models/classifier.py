"""The vertebra classifier (the paper's VCModule): a ResNet with six independent sigmoid outputs, one per class
(OVCF, OF, SN, KD, PS, NORMAL), on the extraction module's patches. At test time a box's probabilities are the mean
over its jittered patches, and a disease is called when its probability reaches the class's decision threshold
(chosen on the validation split when the model was trained; see :mod:`core.training.thresholds`).

A package may also hold an endplate head (:mod:`core.models.endplate`, its weights under ``endplate.``): then the SN
probability is the head's, from the two endplate bands of each box.

A configuration's ``smoothing`` (0 in the paper) is the SD, in slice pixels, of a Gaussian that the slice is smoothed
by before the main network's patches are cut (the endplate head's bands come from the slice as it is): the network
then weighs a body's shape and density, not the grain of one scanner's noise.

Its ``spacing_mm`` (0 in the paper: each slice at its own scale) is a pixel size that every slice whose pixel spacing
is known is resampled to before the main network's patches are cut (bilinear, smoothed first when it shrinks; the
boxes scaled with it, the endplate head again on the slice as it is), so that a body spans as many pixels on a
scanner with coarser pixels as on the one the network learnt from. A slice without a known spacing (a PNG or JPEG) is
used as it is. The smoothing then works in the resampled pixels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torchvision.models import resnet18, resnet34, resnet50
from torchvision.ops import FrozenBatchNorm2d
from torchvision.transforms.v2.functional import gaussian_blur

from core.annotations.model import CLASS_CODES, DISEASES, Disease
from core.errors import ModelPackageError
from core.imaging.rendering import DEFAULT_RENDERING, check_rendering
from core.models.devices import Compute, inference_compute
from core.models.endplate import EndplateGeometry, EndplateNet, extract_bands
from core.models.extraction import PatchGeometry, extract_patches, jitter_boxes
from core.models.package import load_state, read_manifest
from core.models.weights import imagenet_state

ARCHITECTURES = {"resnet18": resnet18, "resnet34": resnet34, "resnet50": resnet50}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MAX_SMOOTHING = 3.0  # pixels: more would blur a body's endplates away
#: The reference pixel sizes ``spacing_mm`` may take (mm), beside 0 (off).
SPACING_RANGE_MM = (0.2, 2.0)
#: The most a slice is enlarged or shrunk for the reference spacing, and the largest side it is resampled to: a
#: slice of coarser pixels than that (a 3 mm localiser) is enlarged only so far, and a huge one is not made larger.
MAX_RESAMPLING = 4.0
MAX_RESAMPLED_SIDE = 4096
#: A slice of coarser pixels than this is resampled as if its pixels were this size: the coarsest the bundled models
#: were trained on (the anatomy phantom draws 0.6-1.0 mm, :class:`core.synthetic.deform.DeformRanges`). Enlarging
#: further makes a blur that no training slice had (a 1.5 mm slice enlarged 2.5 times).
MAX_SOURCE_SPACING_MM = 1.0


@dataclass(frozen=True)
class ClassifierConfig:
    arch: str = "resnet50"
    patch: PatchGeometry = field(default_factory=PatchGeometry)
    classes: tuple[str, ...] = CLASS_CODES
    thresholds: Mapping[str, float] = field(default_factory=lambda: {c: 0.5 for c in CLASS_CODES})
    norm: str = "batch"
    window: str = DEFAULT_RENDERING  # the rendering it learnt from (core.imaging.rendering)
    endplate: EndplateGeometry | None = None  # the SN endplate head's bands, when the package has one
    smoothing: float = 0.0  # Gaussian SD (slice pixels) of the slice under the main network's patches; 0: none
    spacing_mm: float = 0.0  # the pixel size slices are resampled to for the main network; 0: each at its own

    def __post_init__(self) -> None:
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"unknown classifier architecture {self.arch!r}: use {', '.join(ARCHITECTURES)}")
        check_smoothing(self.smoothing)
        check_spacing(self.spacing_mm)
        if tuple(self.classes) != CLASS_CODES:
            raise ValueError(f"classes must be {', '.join(CLASS_CODES)}")
        check_rendering(self.window)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["patch"] = self.patch.to_json()
        data["classes"] = list(self.classes)
        data["thresholds"] = dict(self.thresholds)
        data["endplate"] = self.endplate.to_json() if self.endplate else None
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ClassifierConfig:
        known = set(cls.__dataclass_fields__)
        values = {k: v for k, v in data.items() if k in known}
        values["patch"] = PatchGeometry(**data.get("patch", {}))
        values["classes"] = tuple(data.get("classes", CLASS_CODES))
        thresholds = data.get("thresholds", {})
        if not isinstance(thresholds, Mapping) or not all(
            isinstance(thresholds.get(c, 0.5), int | float) and 0 <= thresholds.get(c, 0.5) <= 1 for c in CLASS_CODES
        ):
            raise ValueError("thresholds must be numbers between 0 and 1 for each class")
        values["thresholds"] = {c: float(thresholds.get(c, 0.5)) for c in CLASS_CODES}
        endplate = data.get("endplate")
        if endplate is not None and not isinstance(endplate, Mapping):
            raise ValueError("endplate must describe the head's bands or be null")
        values["endplate"] = EndplateGeometry.from_json(endplate) if endplate else None
        return cls(**values)

    def with_thresholds(self, thresholds: Mapping[str, float]) -> ClassifierConfig:
        return replace(self, thresholds={c: float(thresholds.get(c, 0.5)) for c in CLASS_CODES})


def build_classifier(config: ClassifierConfig, imagenet: Path | None = None, *, use_imagenet: bool = True) -> nn.Module:
    """A ResNet with a ``len(CLASS_CODES)``-way linear head (sigmoid outputs). ImageNet weights only from a local
    file or the torch cache."""
    norm = FrozenBatchNorm2d if config.norm == "frozen" else nn.BatchNorm2d
    model = ARCHITECTURES[config.arch](weights=None, norm_layer=norm)
    state = imagenet_state(config.arch, imagenet) if use_imagenet else None
    if state is not None:
        model.load_state_dict({k: v for k, v in state.items() if not k.startswith("fc.")}, strict=False)
    model.fc = nn.Linear(model.fc.in_features, len(CLASS_CODES))
    return model


def normalise(patches: torch.Tensor) -> torch.Tensor:
    """Grey patches in 0…1, (m, 1, s, s) → three ImageNet-normalised channels (m, 3, s, s)."""
    mean = torch.tensor(IMAGENET_MEAN, device=patches.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=patches.device).view(1, 3, 1, 1)
    return (patches.expand(-1, 3, -1, -1) - mean) / std


def grey_tensor(image: np.ndarray, device: torch.device) -> torch.Tensor:
    """A uint8 slice → a (1, H, W) float tensor in 0…1 on ``device``."""
    pixels = np.require(image, dtype=np.uint8, requirements=["C", "W"])  # a copy only when read-only
    return torch.from_numpy(pixels).to(device).float().div_(255.0)[None]


def check_smoothing(sd: object) -> None:
    """A ``ValueError`` naming the allowed range unless ``sd`` is a number from 0 to :data:`MAX_SMOOTHING`."""
    if type(sd) not in (int, float) or not 0.0 <= sd <= MAX_SMOOTHING:
        raise ValueError(f"smoothing is a Gaussian SD from 0 to {MAX_SMOOTHING} pixels, not {sd!r}")


def check_spacing(mm: object) -> None:
    """A ``ValueError`` naming the range unless ``mm`` is 0 (off) or a pixel size in :data:`SPACING_RANGE_MM`."""
    low, high = SPACING_RANGE_MM
    if type(mm) not in (int, float) or not (mm == 0 or low <= mm <= high):
        raise ValueError(f"the reference pixel spacing is 0 (off) or from {low} to {high} mm, not {mm!r}")


def resampling(spacing: tuple[float, float] | None, reference: float, shape: tuple[int, int]) -> tuple[int, int] | None:
    """The (height, width) a slice of ``shape`` and pixel ``spacing`` (row, column mm) is resampled to so that its
    pixels are ``reference`` mm, within :data:`MAX_RESAMPLING` and :data:`MAX_RESAMPLED_SIDE`; None when it stays as
    it is (no reference, an unknown or unusable spacing, or a change under 1 %). Pixels coarser than
    :data:`MAX_SOURCE_SPACING_MM` count as that size."""
    if reference <= 0 or spacing is None:
        return None
    factors = []
    for mm in spacing:
        if not (isinstance(mm, int | float) and math.isfinite(mm) and mm > 0):
            return None
        factors.append(min(max(min(mm, MAX_SOURCE_SPACING_MM) / reference, 1 / MAX_RESAMPLING), MAX_RESAMPLING))
    if all(abs(f - 1) < 0.01 for f in factors):
        return None
    limit = min(1.0, MAX_RESAMPLED_SIDE / max(shape[0] * factors[0], shape[1] * factors[1]))
    return max(1, round(shape[0] * factors[0] * limit)), max(1, round(shape[1] * factors[1] * limit))


def resampled(image: torch.Tensor, boxes: np.ndarray, size: tuple[int, int] | None) -> tuple[torch.Tensor, np.ndarray]:
    """``image`` (C, H, W), float, and its ``boxes`` (n, 4, pixels) at ``size`` (:func:`resampling`; None: as they
    are): bilinear, antialiased when it shrinks."""
    if size is None:
        return image, boxes
    height, width = image.shape[-2:]
    out = torch.nn.functional.interpolate(image[None], size=size, mode="bilinear", align_corners=False,
                                          antialias=size[0] < height or size[1] < width)[0]
    scale = np.array([size[1] / width, size[0] / height] * 2, dtype=np.float64)
    return out, np.asarray(boxes, dtype=np.float64).reshape(-1, 4) * scale


def smoothing_radius(sd: float) -> int:
    """The half-width in pixels of :func:`smoothed`'s kernel: a pixel's value depends on no pixel farther away."""
    return max(1, math.ceil(3 * sd))


def smoothed(image: torch.Tensor, sd: float) -> torch.Tensor:
    """``image`` (C, H, W) or (m, C, H, W), float, smoothed by a Gaussian of ``sd`` pixels (reflected at the edges);
    itself when ``sd`` is 0."""
    if sd <= 0:
        return image
    radius = smoothing_radius(sd)
    return gaussian_blur(image, kernel_size=[2 * radius + 1] * 2, sigma=[float(sd)] * 2)


def decide(probabilities: np.ndarray, thresholds: Mapping[str, float]) -> list[frozenset[Disease]]:
    """Diseases called for each row of (n, 6) probabilities; none called means NORMAL."""
    calls = []
    for row in np.asarray(probabilities).reshape(-1, len(CLASS_CODES)):
        calls.append(frozenset(d for i, d in enumerate(DISEASES) if row[i] >= thresholds[d.value]))
    return calls


#: The prefix of the endplate head's tensors in a package's weights.
ENDPLATE_PREFIX = "endplate."
SN_COLUMN = CLASS_CODES.index(Disease.SN.value)


class VertebraClassifier:
    """A trained classifier ready for inference on uint8 slices and boxes in slice pixels."""

    def __init__(self, model: nn.Module, config: ClassifierConfig, compute: Compute, package: Path | None = None,
                 endplate: EndplateNet | None = None):
        if (endplate is None) != (config.endplate is None):
            raise ValueError("an endplate head needs its band geometry in the configuration, and the reverse")
        self.config = config
        self.compute = compute
        self.package = package
        self.model = model.to(compute.device).eval()
        if compute.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.endplate = endplate.to(compute.device).eval() if endplate is not None else None

    @classmethod
    def from_package(cls, path: str | Path, *, device: str = "auto", precision: str = "auto") -> VertebraClassifier:
        manifest = read_manifest(path, kind="classifier")
        try:
            config = ClassifierConfig.from_json(manifest.architecture)
        except (TypeError, ValueError) as exc:
            raise ModelPackageError(f"the manifest describes an unknown classifier ({exc})", path) from exc
        model = build_classifier(config, use_imagenet=False)
        load_state(model, path, exclude=ENDPLATE_PREFIX)
        endplate = None
        if config.endplate is not None:
            endplate = EndplateNet(config.endplate)
            load_state(endplate, path, prefix=ENDPLATE_PREFIX)
        return cls(model, config, inference_compute(device, precision), Path(path), endplate)

    @torch.inference_mode()
    def endplate_probabilities(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """The endplate head's SN probability for each box of one uint8 slice (no head: an error)."""
        if self.endplate is None or self.config.endplate is None:
            raise ValueError("this classifier has no endplate head")
        bands = extract_bands(grey_tensor(image, self.compute.device), np.asarray(boxes, dtype=np.float64),
                              self.config.endplate)
        return torch.sigmoid(self.endplate(bands).float()).cpu().numpy()

    @torch.inference_mode()
    def predict(self, images: Sequence[np.ndarray], boxes: Sequence[np.ndarray], *,
                spacings: Sequence[tuple[float, float] | None] | None = None, chunk: int = 256) -> list[np.ndarray]:
        """(n_i, 6) probabilities per slice: the mean over each box's test-time patches, one forward pass per
        ``chunk`` patches (all the patches of a slice or several slices together). ``spacings``: each slice's pixel
        spacing (row, column mm; None where unknown), for a classifier with a ``spacing_mm``."""
        geometry = self.config.patch
        spacings = list(spacings) if spacings is not None else [None] * len(images)
        patches, bands, counts = [], [], []
        for image, slice_boxes, spacing in zip(images, boxes, spacings, strict=True):
            b = np.asarray(slice_boxes, dtype=np.float64).reshape(-1, 4)
            counts.append(len(b))
            if len(b):
                tensor = grey_tensor(image, self.compute.device)
                scaled, scaled_boxes = resampled(tensor, b, resampling(spacing, self.config.spacing_mm,
                                                                       tuple(image.shape[:2])))
                patches.append(extract_patches(smoothed(scaled, self.config.smoothing),
                                               jitter_boxes(scaled_boxes, geometry), geometry))
                if self.config.endplate is not None:
                    bands.append(extract_bands(tensor, b, self.config.endplate))
        if not patches:
            return [np.zeros((0, len(CLASS_CODES)), dtype=np.float32) for _ in counts]
        batch = normalise(torch.cat(patches))
        if self.compute.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        logits = []
        with self.compute.autocast():
            for start in range(0, len(batch), chunk):
                logits.append(self.model(batch[start : start + chunk]).float())
        probabilities = torch.sigmoid(torch.cat(logits)).view(-1, geometry.count, len(CLASS_CODES)).mean(dim=1)
        if self.endplate is not None:
            band_batch = torch.cat(bands)
            node = torch.cat([self.endplate(band_batch[start : start + chunk]).float()
                              for start in range(0, len(band_batch), chunk)])
            probabilities[:, SN_COLUMN] = torch.sigmoid(node)
        per_box = probabilities.cpu().numpy()
        return list(np.split(per_box, np.cumsum(counts)[:-1]))

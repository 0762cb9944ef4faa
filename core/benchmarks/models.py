"""What the model benchmarks time, in one place: the presets' detector and classifier with random weights (only
the architecture matters for time and FLOPs), this machine's matmul rate to compare them with, and how much smaller
all of it is at the ``smoke`` size.

``bench detect``, ``bench diagnose``, ``bench train`` and ``bench gui`` build their models from here.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, replace

import torch

from core.benchmarks import BenchmarkError
from core.imaging.letterbox import InputGeometry
from core.models.classifier import ClassifierConfig, VertebraClassifier, build_classifier
from core.models.detector import DetectorConfig, VertebraDetector, build_detector
from core.models.devices import Compute
from core.models.endplate import EndplateGeometry, EndplateNet
from core.models.extraction import PatchGeometry

PRESETS = ("paper", "fast")


@dataclass(frozen=True)
class ModelScale:
    """How big the models run: the detector's input and the classifier's patch side (None: the configuration's own),
    and the side and runs of the matmul that measures the machine's rate."""

    detector_px: int | None = None
    patch_px: int | None = None
    proposals: int | None = None  # the most region proposals the detector keeps at test time
    matmul_n: int = 2048
    matmul_repeats: int = 7

    def detector(self, config: DetectorConfig) -> DetectorConfig:
        if self.detector_px is not None:
            config = replace(config, geometry=replace(config.geometry, size=self.detector_px))
        if self.proposals is not None:
            config = replace(config, rpn_pre_nms_top_n_test=min(config.rpn_pre_nms_top_n_test, self.proposals),
                             rpn_post_nms_top_n_test=min(config.rpn_post_nms_top_n_test, self.proposals))
        return config

    def classifier(self, config: ClassifierConfig) -> ClassifierConfig:
        if self.patch_px is None:
            return config
        return replace(config, patch=replace(config.patch, size=self.patch_px))


MODEL_SCALES = {
    "full": ModelScale(),
    "smoke": ModelScale(detector_px=128, patch_px=32, proposals=20, matmul_n=256, matmul_repeats=2),
}


def preset_configs(preset: str) -> tuple[DetectorConfig, ClassifierConfig]:
    """``paper``: the paper's sizes; ``fast``: the CPU configuration of the bundled models (with the endplate head)."""
    if preset == "paper":
        return DetectorConfig().fast_test_time(), ClassifierConfig()
    if preset == "fast":
        detector = DetectorConfig(geometry=InputGeometry(1024, 512), fpn_channels=128, box_representation=256)
        return detector.fast_test_time(), ClassifierConfig(arch="resnet18", patch=PatchGeometry(size=128),
                                                           endplate=EndplateGeometry())
    raise BenchmarkError(f"unknown preset {preset!r}: use {' or '.join(PRESETS)}")


def scaled_configs(preset: str, scale: ModelScale) -> tuple[DetectorConfig, ClassifierConfig]:
    detector, classifier = preset_configs(preset)
    return scale.detector(detector), scale.classifier(classifier)


def random_detector(config: DetectorConfig, compute: Compute) -> VertebraDetector:
    torch.manual_seed(0)
    return VertebraDetector(build_detector(config), config, compute)


def random_classifier(config: ClassifierConfig, compute: Compute) -> VertebraClassifier:
    """The classifier with its endplate head when the configuration names one, as a package loads it."""
    torch.manual_seed(0)
    head = EndplateNet(config.endplate) if config.endplate is not None else None
    return VertebraClassifier(build_classifier(config), config, compute, endplate=head)


def random_models(preset: str, compute: Compute, scale: ModelScale | None = None,
                  ) -> tuple[VertebraDetector, VertebraClassifier]:
    """The preset's detector and classifier with random weights, at ``scale`` (default: full size)."""
    detector, classifier = scaled_configs(preset, scale or ModelScale())
    return random_detector(detector, compute), random_classifier(classifier, compute)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_gflops(device: torch.device, dtype: torch.dtype = torch.float32, n: int = 2048, repeats: int = 7) -> float:
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    times = []
    for _ in range(repeats + 1):
        sync(device)
        start = time.perf_counter()
        a @ b
        sync(device)
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times[1:]) / 1e9

"""Whole-slice diagnosis benchmark: detector + 5 patches for each of 12 vertebrae (60 patches) + classifier, on a
1024 x 1024 slice. Prints the median time of the slice and of each stage, the GFLOP per slice, the achieved FLOP/s
and its ratio to this machine's float32 matmul FLOP/s measured in the same run.

Presets (the models' weights are random: only the architecture matters for time and FLOPs):
- ``paper``: ResNet18-FPN Faster R-CNN at 1024 px, ResNet50 on 224 px patches;
- ``fast``: the CPU configuration of the bundled models: the detector at 512 px with a 128-channel pyramid and a
  256-wide box head, ResNet18 on 128 px patches.
Both run as the app does: 100 region proposals, and bfloat16 autocast on CPUs with bf16 units.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from core.benchmarks.detect import _slice, _sync, matmul_gflops
from core.models.classifier import ClassifierConfig, VertebraClassifier, build_classifier, normalise
from core.models.detector import DetectorConfig, VertebraDetector, build_detector
from core.models.devices import inference_compute, resolve_device
from core.models.endplate import EndplateGeometry, EndplateNet
from core.models.extraction import PatchGeometry, extract_patches, jitter_boxes
from core.training.transforms import InputGeometry

VERTEBRAE = 12


def preset_configs(preset: str) -> tuple[DetectorConfig, ClassifierConfig]:
    if preset == "paper":
        return DetectorConfig().fast_test_time(), ClassifierConfig()
    if preset == "fast":
        detector = DetectorConfig(geometry=InputGeometry(1024, 512), fpn_channels=128, box_representation=256)
        return detector.fast_test_time(), ClassifierConfig(arch="resnet18", patch=PatchGeometry(size=128),
                                                           endplate=EndplateGeometry())
    raise ValueError(f"unknown preset {preset!r}: use paper or fast")


def _boxes() -> np.ndarray:
    """Twelve vertebra-sized boxes down the middle of the slice."""
    return np.array([[420.0, 60 + 75 * i, 520.0, 120 + 75 * i] for i in range(VERTEBRAE)])


def _flops(detector: DetectorConfig, classifier: ClassifierConfig) -> tuple[float, float]:
    with torch.inference_mode():
        with FlopCounterMode(display=False) as counter:
            build_detector(detector).eval()([torch.rand(3, detector.geometry.size, detector.geometry.size)])
        detect = counter.get_total_flops() / 1e9
        with FlopCounterMode(display=False) as counter:
            size = classifier.patch.size
            build_classifier(classifier).eval()(torch.rand(VERTEBRAE * classifier.patch.count, 3, size, size))
            if classifier.endplate is not None:
                bands = classifier.endplate
                EndplateNet(bands).eval()(torch.rand(VERTEBRAE, 2, bands.height, bands.width))
        return detect, counter.get_total_flops() / 1e9


def _time(function: Any, repeats: int, device: torch.device) -> list[float]:
    function()  # warm-up: oneDNN picks its kernels
    times = []
    for _ in range(repeats):
        _sync(device)
        started = time.perf_counter()
        function()
        _sync(device)
        times.append(time.perf_counter() - started)
    return times


def bench_diagnose(repeats: int = 5, device: str = "cpu", preset: str = "paper") -> dict[str, Any]:
    torch.set_grad_enabled(False)
    detector_config, classifier_config = preset_configs(preset)
    compute = inference_compute(device)
    torch.manual_seed(0)
    detector = VertebraDetector(build_detector(detector_config), detector_config, compute)
    head = EndplateNet(classifier_config.endplate) if classifier_config.endplate else None
    classifier = VertebraClassifier(build_classifier(classifier_config), classifier_config, compute, endplate=head)
    image = _slice()
    boxes = _boxes()
    target = resolve_device(device)
    detect_times = _time(lambda: detector.detect([image], threshold=0.0), repeats, target)
    classify_times = _time(lambda: classifier.predict([image], [boxes]), repeats, target)
    slice_times = _time(lambda: (detector.detect([image], threshold=0.0), classifier.predict([image], [boxes])),
                        repeats, target)
    grey = torch.from_numpy(image).float()[None] / 255
    extract_times = _time(lambda: normalise(extract_patches(grey, jitter_boxes(boxes, classifier_config.patch),
                                                            classifier_config.patch)), repeats, target)
    gflop_detect, gflop_classify = _flops(detector_config, classifier_config)
    gflop = gflop_detect + gflop_classify
    latency = statistics.median(slice_times)
    matmul = matmul_gflops(target)
    result: dict[str, Any] = {
        "preset": preset, "device": compute.describe(), "repeats": repeats, "vertebrae": VERTEBRAE,
        "patches": VERTEBRAE * classifier_config.patch.count,
        "latency_s": latency, "latency_max_s": max(slice_times),
        "detect_s": statistics.median(detect_times), "extract_s": statistics.median(extract_times),
        "classify_s": statistics.median(classify_times),
        "gflop_per_slice": gflop, "gflop_detect": gflop_detect, "gflop_classify": gflop_classify,
        "achieved_gflops": gflop / latency, "matmul_gflops": matmul, "ratio": gflop / latency / matmul,
    }
    if compute.autocast_dtype == torch.bfloat16:
        result["bf16_matmul_gflops"] = matmul_gflops(target, torch.bfloat16)
    result["lines"] = [
        f"diagnose, preset {preset}, one 1024x1024 slice with {VERTEBRAE} vertebrae "
        f"({result['patches']} patches), {compute.describe()}:",
        f"  whole slice {latency:.3f} s median (max {max(slice_times):.3f}); detection {result['detect_s']:.3f} s, "
        f"patch extraction {result['extract_s'] * 1000:.1f} ms, classification (with extraction) "
        f"{result['classify_s']:.3f} s",
        f"  {gflop:.0f} GFLOP per slice ({gflop_detect:.0f} detection + {gflop_classify:.0f} classification), "
        f"{result['achieved_gflops']:.0f} GFLOP/s = {result['ratio']:.2f} of the fp32 matmul peak "
        f"({matmul:.0f} GFLOP/s)",
    ]
    if "bf16_matmul_gflops" in result:
        result["lines"].append(f"  bf16 matmul peak in this run: {result['bf16_matmul_gflops']:.0f} GFLOP/s "
                               f"(ratio {result['achieved_gflops'] / result['bf16_matmul_gflops']:.2f})")
    return result

"""Whole-slice diagnosis benchmark: detector + 5 patches for each of 12 vertebrae (60 patches) + classifier, on a
1024 x 1024 slice. Prints the median time of the slice and of each stage, the GFLOP per slice, the achieved FLOP/s
and its ratio to this machine's float32 matmul FLOP/s measured in the same run.

Presets (the models' weights are random: only the architecture matters for time and FLOPs; see
:mod:`core.benchmarks.models`):
- ``paper``: ResNet18-FPN Faster R-CNN at 1024 px, ResNet50 on 224 px patches;
- ``fast``: the CPU configuration of the bundled models: the detector at 512 px with a 128-channel pyramid and a
  256-wide box head, ResNet18 on 128 px patches, and the endplate head.
Both run as the app does: 100 region proposals, and bfloat16 autocast on CPUs with bf16 units. At the ``smoke`` size
the detector sees 128 px and keeps 20 proposals, and the patches are 32 px.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from core.benchmarks import scale_for
from core.benchmarks.models import (
    MODEL_SCALES,
    matmul_gflops,
    random_classifier,
    random_detector,
    scaled_configs,
    sync,
)
from core.benchmarks.phantom import phantom_slice
from core.models.classifier import ClassifierConfig, build_classifier, normalise
from core.models.detector import DetectorConfig, build_detector
from core.models.devices import inference_compute, resolve_device
from core.models.endplate import EndplateNet
from core.models.extraction import extract_patches, jitter_boxes

VERTEBRAE = 12


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
        sync(device)
        started = time.perf_counter()
        function()
        sync(device)
        times.append(time.perf_counter() - started)
    return times


def _stage_times(detector_config: DetectorConfig, classifier_config: ClassifierConfig, compute: Any, repeats: int,
                 ) -> dict[str, list[float]]:
    """The slice through each stage and through all of them, ``repeats`` times after a warm-up."""
    detector = random_detector(detector_config, compute)
    classifier = random_classifier(classifier_config, compute)
    image, boxes, target = phantom_slice(), _boxes(), compute.device
    grey = torch.from_numpy(image).float()[None] / 255
    patch = classifier_config.patch
    return {
        "detect": _time(lambda: detector.detect([image], threshold=0.0), repeats, target),
        "classify": _time(lambda: classifier.predict([image], [boxes]), repeats, target),
        "slice": _time(lambda: (detector.detect([image], threshold=0.0), classifier.predict([image], [boxes])),
                       repeats, target),
        "extract": _time(lambda: normalise(extract_patches(grey, jitter_boxes(boxes, patch), patch)), repeats,
                         target),
    }


def bench_diagnose(repeats: int = 5, device: str = "cpu", preset: str = "paper", size: str = "full") -> dict[str, Any]:
    scale = scale_for(MODEL_SCALES, size)
    detector_config, classifier_config = scaled_configs(preset, scale)
    compute = inference_compute(device)
    with torch.no_grad():
        times = _stage_times(detector_config, classifier_config, compute, repeats)
        gflop_detect, gflop_classify = _flops(detector_config, classifier_config)
    gflop = gflop_detect + gflop_classify
    latency = statistics.median(times["slice"])
    target = resolve_device(device)
    matmul = matmul_gflops(target, n=scale.matmul_n, repeats=scale.matmul_repeats)
    result: dict[str, Any] = {
        "preset": preset, "size": size, "device": compute.describe(), "repeats": repeats, "vertebrae": VERTEBRAE,
        "patches": VERTEBRAE * classifier_config.patch.count,
        "detector_px": detector_config.geometry.size, "patch_px": classifier_config.patch.size,
        "latency_s": latency, "latency_max_s": max(times["slice"]),
        "detect_s": statistics.median(times["detect"]), "extract_s": statistics.median(times["extract"]),
        "classify_s": statistics.median(times["classify"]),
        "gflop_per_slice": gflop, "gflop_detect": gflop_detect, "gflop_classify": gflop_classify,
        "achieved_gflops": gflop / latency, "matmul_gflops": matmul, "ratio": gflop / latency / matmul,
    }
    if compute.autocast_dtype == torch.bfloat16:
        result["bf16_matmul_gflops"] = matmul_gflops(target, torch.bfloat16, scale.matmul_n, scale.matmul_repeats)
    result["lines"] = _lines(result)
    return result


def _lines(result: dict[str, Any]) -> list[str]:
    latency, gflop, matmul = result["latency_s"], result["gflop_per_slice"], result["matmul_gflops"]
    lines = [
        f"diagnose, preset {result['preset']}, one 1024x1024 slice with {VERTEBRAE} vertebrae "
        f"({result['patches']} patches), {result['device']}:",
        f"  whole slice {latency:.3f} s median (max {result['latency_max_s']:.3f}); detection "
        f"{result['detect_s']:.3f} s, patch extraction {result['extract_s'] * 1000:.1f} ms, classification (with "
        f"extraction) {result['classify_s']:.3f} s",
        f"  {gflop:.0f} GFLOP per slice ({result['gflop_detect']:.0f} detection + {result['gflop_classify']:.0f} "
        f"classification), {result['achieved_gflops']:.0f} GFLOP/s = {result['ratio']:.2f} of the fp32 matmul peak "
        f"({matmul:.0f} GFLOP/s)",
    ]
    if "bf16_matmul_gflops" in result:
        lines.append(f"  bf16 matmul peak in this run: {result['bf16_matmul_gflops']:.0f} GFLOP/s "
                     f"(ratio {result['achieved_gflops'] / result['bf16_matmul_gflops']:.2f})")
    return lines

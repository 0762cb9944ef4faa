"""Detector benchmark: latency per 1024 x 1024 slice, FLOPs per slice, and the achieved share of this machine's
matmul peak, measured in the same run.

Two configurations of the paper's ResNet18-FPN detector are timed on the same slice:
- ``torchvision defaults``: float32, 1000 proposals kept after NMS, 100 detections;
- ``optimised`` (what ``detect`` uses): 100 proposals and 50 detections (a slice has at most ~20 vertebrae), and on
  a CPU with bf16 matrix units, bfloat16 autocast with channels-last memory.

The optimised detector is also timed looking at each slice in four views (as it is, mirrored, upside down and both,
fused: the bundled detector's setting), with its cost relative to one view in the same run.

At the ``smoke`` size both detectors see a 128 px input and keep 20 proposals, and the matmul is 256 x 256.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from core.benchmarks import scale_for
from core.benchmarks.models import MODEL_SCALES, ModelScale, matmul_gflops, random_detector, sync
from core.benchmarks.phantom import phantom_slice
from core.models.detector import DetectorConfig, VertebraDetector, build_detector
from core.models.devices import Compute, inference_compute, resolve_device

SIDE = 1024


def gflop_per_slice(config: DetectorConfig) -> float:
    model = build_detector(config).eval()
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model([torch.rand(3, config.geometry.size, config.geometry.size)])
    return counter.get_total_flops() / 1e9


def _latency(detector: VertebraDetector, image: np.ndarray, repeats: int, batch: int = 1) -> list[float]:
    images = [image] * batch
    detector.detect(images, threshold=0.0, batch_size=batch)  # warm-up (oneDNN picks its kernels here)
    times = []
    for _ in range(repeats):
        sync(detector.compute.device)
        start = time.perf_counter()
        detector.detect(images, threshold=0.0, batch_size=batch)
        sync(detector.compute.device)
        times.append((time.perf_counter() - start) / batch)
    return times


def _device_figures(name: str, image: np.ndarray, repeats: int, scale: ModelScale) -> dict[str, Any]:
    """Both configurations timed on one device (``cpu`` or ``cuda``)."""
    default = scale.detector(DetectorConfig())
    fast = default.fast_test_time()
    target = resolve_device(name)
    matmul = matmul_gflops(target, n=scale.matmul_n, repeats=scale.matmul_repeats)
    plain = _latency(random_detector(default, Compute(target, None, False)), image, repeats)
    optimised_compute = inference_compute(name)
    optimised = _latency(random_detector(fast, optimised_compute), image, repeats)
    four = _latency(random_detector(replace(fast, test_views=4), optimised_compute), image, repeats)
    gflop_default, gflop_fast = gflop_per_slice(default), gflop_per_slice(fast)
    latency = statistics.median(optimised)
    achieved = gflop_fast / latency
    figures: dict[str, Any] = {
        "latency_s": latency,
        "latency_max_s": max(optimised),
        "gflop_per_slice": gflop_fast,
        "achieved_gflops": achieved,
        "matmul_gflops": matmul,
        "ratio": achieved / matmul,
        "precision": optimised_compute.describe(),
        "input_px": fast.geometry.size,
        "default_latency_s": statistics.median(plain),
        "default_gflop_per_slice": gflop_default,
        "default_achieved_gflops": gflop_default / statistics.median(plain),
        "speedup": statistics.median(plain) / latency,
        "views4_latency_s": statistics.median(four),
        "views4_cost": statistics.median(four) / latency,
    }
    if target.type == "cpu" and optimised_compute.autocast_dtype == torch.bfloat16:
        figures["bf16_matmul_gflops"] = matmul_gflops(target, torch.bfloat16, scale.matmul_n, scale.matmul_repeats)
    if target.type == "cuda":
        batch = _latency(random_detector(fast, optimised_compute), image, repeats, batch=8)
        figures["slices_per_s_batch8"] = 1.0 / statistics.median(batch)
    return figures


def _device_lines(name: str, f: dict[str, Any]) -> list[str]:
    matmul = f["matmul_gflops"]
    lines = [
        f"{name}: ResNet18-FPN detector, one {SIDE}x{SIDE} slice at {f['input_px']} px ({f['precision']}):",
        f"  optimised: {f['latency_s']:.3f} s median (max {f['latency_max_s']:.3f}), {f['gflop_per_slice']:.0f} GFLOP, "
        f"{f['achieved_gflops']:.0f} GFLOP/s = {f['ratio']:.2f} of the fp32 matmul peak ({matmul:.0f} GFLOP/s)",
        f"  torchvision defaults: {f['default_latency_s']:.3f} s, {f['default_gflop_per_slice']:.0f} GFLOP, "
        f"{f['default_achieved_gflops']:.0f} GFLOP/s; speed-up {f['speedup']:.2f}x",
        f"  optimised, four views fused: {f['views4_latency_s']:.3f} s, {f['views4_cost']:.2f}x one view",
    ]
    if "bf16_matmul_gflops" in f:
        lines.append(f"  bf16 matmul peak in this run: {f['bf16_matmul_gflops']:.0f} GFLOP/s")
    if "slices_per_s_batch8" in f:
        lines.append(f"  throughput at batch 8: {f['slices_per_s_batch8']:.1f} slices/s")
    return lines


def bench_detect(repeats: int = 5, device: str = "cpu", size: str = "full") -> dict[str, Any]:
    scale = scale_for(MODEL_SCALES, size)
    image = phantom_slice()
    devices = [device] if device != "all" else ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
    result: dict[str, Any] = {"repeats": repeats, "size": size, "threads": torch.get_num_threads()}
    lines = []
    for name in devices:
        with torch.no_grad():
            figures = _device_figures(name, image, repeats, scale)
        if name == devices[0]:
            result.update(figures)
        else:
            result[name] = figures
        lines += _device_lines(name, figures)
    result["lines"] = lines
    return result

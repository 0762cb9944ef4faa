"""Detector benchmark: latency per 1024 x 1024 slice, FLOPs per slice, and the achieved share of this machine's
matmul peak, measured in the same run.

Two configurations of the paper's ResNet18-FPN detector are timed on the same slice:
- ``torchvision defaults``: float32, 1000 proposals kept after NMS, 100 detections;
- ``optimised`` (what ``detect`` uses): 100 proposals and 50 detections (a slice has at most ~20 vertebrae), and on
  a CPU with bf16 matrix units, bfloat16 autocast with channels-last memory.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from core.imaging.windowing import apply_window, min_max_window
from core.models.detector import DetectorConfig, VertebraDetector, build_detector
from core.models.devices import Compute, inference_compute, resolve_device
from core.synthetic.generate import SynthOptions, plan_study
from core.synthetic.render import CaseRenderer

SIDE = 1024


def _slice() -> np.ndarray:
    """A phantom slice as the model's 8-bit input."""
    planned = plan_study(SynthOptions(cases=1, seed=7, slices_per_case=1, readers=0)).cases[0]
    hu = CaseRenderer(planned.case, np.random.default_rng(0)).render(planned.case.offsets_mm[0]).hu
    return apply_window(hu, min_max_window(hu))


def matmul_gflops(device: torch.device, dtype: torch.dtype = torch.float32, n: int = 2048, repeats: int = 7) -> float:
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    times = []
    for _ in range(repeats + 1):
        _sync(device)
        start = time.perf_counter()
        a @ b
        _sync(device)
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times[1:]) / 1e9


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _detector(config: DetectorConfig, compute: Compute) -> VertebraDetector:
    torch.manual_seed(0)
    return VertebraDetector(build_detector(config), config, compute)


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
        _sync(detector.compute.device)
        start = time.perf_counter()
        detector.detect(images, threshold=0.0, batch_size=batch)
        _sync(detector.compute.device)
        times.append((time.perf_counter() - start) / batch)
    return times


def bench_detect(repeats: int = 5, device: str = "cpu") -> dict[str, Any]:
    torch.set_grad_enabled(False)
    image = _slice()
    default = DetectorConfig()
    fast = default.fast_test_time()
    devices = ["cpu", "cuda"] if device == "all" and torch.cuda.is_available() else [device]
    result: dict[str, Any] = {"repeats": repeats, "threads": torch.get_num_threads()}
    lines = []
    for name in devices:
        target = resolve_device(name)
        matmul = matmul_gflops(target)
        plain = _latency(_detector(default, Compute(target, None, False)), image, repeats)
        optimised_compute = inference_compute(name)
        optimised = _latency(_detector(fast, optimised_compute), image, repeats)
        gflop_default, gflop_fast = gflop_per_slice(default), gflop_per_slice(fast)
        latency = statistics.median(optimised)
        achieved = gflop_fast / latency
        figures = {
            "latency_s": latency,
            "latency_max_s": max(optimised),
            "gflop_per_slice": gflop_fast,
            "achieved_gflops": achieved,
            "matmul_gflops": matmul,
            "ratio": achieved / matmul,
            "precision": optimised_compute.describe(),
            "default_latency_s": statistics.median(plain),
            "default_gflop_per_slice": gflop_default,
            "default_achieved_gflops": gflop_default / statistics.median(plain),
            "speedup": statistics.median(plain) / latency,
        }
        if target.type == "cpu" and optimised_compute.autocast_dtype == torch.bfloat16:
            figures["bf16_matmul_gflops"] = matmul_gflops(target, torch.bfloat16)
        if target.type == "cuda":
            batch = _latency(_detector(fast, optimised_compute), image, repeats, batch=8)
            figures["slices_per_s_batch8"] = 1.0 / statistics.median(batch)
        if name == devices[0]:
            result.update(figures)
        else:
            result[name] = figures
        lines += [
            f"{name}: ResNet18-FPN detector, one {SIDE}x{SIDE} slice ({figures['precision']}):",
            f"  optimised: {latency:.3f} s median (max {max(optimised):.3f}), {gflop_fast:.0f} GFLOP, "
            f"{achieved:.0f} GFLOP/s = {achieved / matmul:.2f} of the fp32 matmul peak ({matmul:.0f} GFLOP/s)",
            f"  torchvision defaults: {figures['default_latency_s']:.3f} s, {gflop_default:.0f} GFLOP, "
            f"{figures['default_achieved_gflops']:.0f} GFLOP/s; speed-up {figures['speedup']:.2f}x",
        ]
        if "bf16_matmul_gflops" in figures:
            lines.append(f"  bf16 matmul peak in this run: {figures['bf16_matmul_gflops']:.0f} GFLOP/s")
        if "slices_per_s_batch8" in figures:
            lines.append(f"  throughput at batch 8: {figures['slices_per_s_batch8']:.1f} slices/s")
    result["lines"] = lines
    return result

"""Benchmarks behind ``vertebra-review bench``: each prints medians of several runs, never pass/fail."""

from __future__ import annotations

import importlib
from typing import Any


def run_benchmark(what: str, *, repeats: int = 5, device: str = "cpu", preset: str = "paper") -> dict[str, Any]:
    if what == "io":
        from core.benchmarks.imaging import bench_io

        return bench_io(repeats=repeats)
    if what == "synth":
        from core.benchmarks.synth import bench_synth

        return bench_synth(repeats=repeats)
    if what == "detect":
        from core.benchmarks.detect import bench_detect

        return bench_detect(repeats=repeats, device=device)
    if what == "diagnose":
        from core.benchmarks.diagnose import bench_diagnose

        return bench_diagnose(repeats=repeats, device=device, preset=preset)
    if what == "train":
        from core.benchmarks.train import bench_train

        return bench_train(repeats=repeats, device=device, preset=preset)
    if what == "gui":
        # The GUI benchmark lives with the GUI; loaded by name so that core never imports Qt.
        return importlib.import_module("desktop.benchmark").bench_gui(repeats=repeats)
    raise ValueError(f"unknown benchmark {what!r}")

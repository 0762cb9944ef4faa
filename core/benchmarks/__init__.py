"""Benchmarks behind ``vertebra-review bench``: each prints medians of several runs, never pass/fail. ``bench gui``,
which measures the desktop app, is :mod:`desktop.benchmark`; the command line runs it.

Each runs at one of two sizes: ``full`` (the figures the README gives) or ``smoke``, the smallest run that still goes
through every stage (a few tiny images, a few steps), which the test suite runs to keep every benchmark working.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from core.errors import VertebraReviewError

BENCHMARKS = ("io", "synth", "detect", "diagnose", "train")  # and ``gui``, in desktop.benchmark
SIZES = ("full", "smoke")

_Scale = TypeVar("_Scale")


class BenchmarkError(VertebraReviewError, ValueError):
    """A benchmark, size or preset that does not exist was asked for."""


def scale_for(scales: Mapping[str, _Scale], size: str) -> _Scale:
    """One benchmark's settings at ``size`` (``full`` or ``smoke``)."""
    if size not in scales:
        raise BenchmarkError(f"unknown benchmark size {size!r}: use {' or '.join(SIZES)}")
    return scales[size]


def run_benchmark(what: str, *, repeats: int = 5, device: str = "cpu", preset: str = "paper",
                  size: str = "full", anatomy: Sequence[tuple[Path, str | None]] | None = None) -> dict[str, Any]:
    """``anatomy``: label maps (with their numbering) for ``synth``'s anatomy-source figures, instead of the
    bundled ones."""
    if size not in SIZES:
        raise BenchmarkError(f"unknown benchmark size {size!r}: use {' or '.join(SIZES)}")
    if what == "io":
        from core.benchmarks.imaging import bench_io

        return bench_io(repeats=repeats, size=size)
    if what == "synth":
        from core.benchmarks.synth import bench_synth

        return bench_synth(repeats=repeats, size=size, anatomy=anatomy)
    if what == "detect":
        from core.benchmarks.detect import bench_detect

        return bench_detect(repeats=repeats, device=device, size=size)
    if what == "diagnose":
        from core.benchmarks.diagnose import bench_diagnose

        return bench_diagnose(repeats=repeats, device=device, preset=preset, size=size)
    if what == "train":
        from core.benchmarks.train import bench_train

        return bench_train(repeats=repeats, device=device, preset=preset, size=size)
    raise BenchmarkError(f"unknown benchmark {what!r}: use {', '.join(BENCHMARKS)}")

"""Phantom benchmark: slices per second of ``synth`` (render and write), with one process and with every core."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from core.progress import run
from core.synthetic.generate import SynthOptions, generate_study, plan_study
from core.synthetic.render import CaseRenderer

CASES = 8


def _study_rate(workers: int, seed: int) -> float:
    with tempfile.TemporaryDirectory(prefix="vr-synth-") as tmp:
        options = SynthOptions(cases=CASES, seed=seed)
        started = time.perf_counter()
        report = run(generate_study(Path(tmp) / "study", options, workers=workers))
        return report.slices / (time.perf_counter() - started)


def _render_rate(seed: int) -> float:
    plan = plan_study(SynthOptions(cases=CASES, seed=seed))
    started = time.perf_counter()
    count = 0
    for planned in plan.cases:
        renderer = CaseRenderer(planned.case, np.random.default_rng(0))
        for number, x_mm in enumerate(planned.case.offsets_mm, start=1):
            renderer.render(x_mm, number=number)
            count += 1
    return count / (time.perf_counter() - started)


def bench_synth(repeats: int = 3) -> dict[str, Any]:
    cores = os.cpu_count() or 1
    parallel = [_study_rate(cores, seed) for seed in range(repeats)]
    single = [_study_rate(1, seed) for seed in range(repeats)]
    render = [_render_rate(seed) for seed in range(repeats)]
    result: dict[str, Any] = {
        "slices_per_s": statistics.median(parallel),
        "slices_per_s_min": min(parallel),
        "slices_per_s_one_process": statistics.median(single),
        "render_only_slices_per_s": statistics.median(render),
        "workers": cores,
        "cases": CASES,
        "repeats": repeats,
    }
    result["lines"] = [
        f"synth, {CASES} cases x 10 slices, rendered and written (DICOM + PNG + 4 LabelMe JSON per slice):",
        f"  {result['slices_per_s']:.1f} slices/s median with {cores} processes (min {min(parallel):.1f}; aim ≥ 20)",
        f"  {result['slices_per_s_one_process']:.1f} slices/s median in one process",
        f"  rendering alone: {result['render_only_slices_per_s']:.1f} slices/s (one process)",
    ]
    return result

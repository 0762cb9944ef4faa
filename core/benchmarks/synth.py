"""Phantom benchmark: slices per second of ``synth`` (render and write), with one process and with every core, and
the rendering rate of the real-anatomy source in one process (on the bundled label maps, or on those given)."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.benchmarks import scale_for
from core.progress import run
from core.resources import sample_label_maps
from core.synthetic.anatomy_study import AnatomyOptions, AnatomySource, atlas_for, plan_case, render_slice
from core.synthetic.generate import SynthOptions, generate_study, plan_study
from core.synthetic.render import CaseRenderer

CASES = 8


@dataclass(frozen=True)
class SynthScale:
    """The phantom study each run renders (``smoke``: two cases of one slice, so the processes still share it)."""

    cases: int
    slices_per_case: int

    def options(self, seed: int) -> SynthOptions:
        return SynthOptions(cases=self.cases, seed=seed, slices_per_case=self.slices_per_case)


SCALES = {"full": SynthScale(CASES, SynthOptions().slices_per_case), "smoke": SynthScale(2, 1)}
#: The anatomy source's run: cases (cycling through the label maps) x slices.
ANATOMY_SCALES = {"full": SynthScale(8, 6), "smoke": SynthScale(1, 1)}


def _study_rate(scale: SynthScale, workers: int, seed: int) -> float:
    with tempfile.TemporaryDirectory(prefix="vr-synth-") as tmp:
        started = time.perf_counter()
        report = run(generate_study(Path(tmp) / "study", scale.options(seed), workers=workers))
        return report.slices / (time.perf_counter() - started)


def _render_rate(scale: SynthScale, seed: int) -> float:
    plan = plan_study(scale.options(seed))
    started = time.perf_counter()
    count = 0
    for planned in plan.cases:
        renderer = CaseRenderer(planned.case, np.random.default_rng(0))
        for number, x_mm in enumerate(planned.case.offsets_mm, start=1):
            renderer.render(x_mm, number=number)
            count += 1
    return count / (time.perf_counter() - started)


def _anatomy_rate(scale: SynthScale, sources: tuple[AnatomySource, ...], seed: int) -> float:
    """Slices per second of the anatomy source's rendering in this process (its atlases already built)."""
    options = AnatomyOptions(sources, cases=scale.cases, seed=seed, slices_per_case=scale.slices_per_case)
    plans = [plan_case(options, index) for index in range(scale.cases)]
    started = time.perf_counter()
    for plan in plans:
        for number in range(1, scale.slices_per_case + 1):
            render_slice(plan, number)
    return scale.cases * scale.slices_per_case / (time.perf_counter() - started)


def bench_anatomy(repeats: int, size: str, maps: Sequence[tuple[Path, str | None]] | None = None) -> dict[str, Any]:
    """The anatomy source's figures: building each atlas once, then rendering slices (``maps``: label maps and
    their numbering; the bundled ones by default)."""
    scale = scale_for(ANATOMY_SCALES, size)
    sources = tuple(AnatomySource(Path(path), scheme) for path, scheme in (maps or sample_label_maps()))
    started = time.perf_counter()
    for source in sources:
        atlas_for(source)
    atlas_s = (time.perf_counter() - started) / len(sources)
    rates = [_anatomy_rate(scale, sources, seed) for seed in range(repeats)]
    return {
        "anatomy_slices_per_s_one_process": statistics.median(rates),
        "anatomy_slices_per_s_min": min(rates),
        "anatomy_atlas_s": atlas_s,
        "anatomy_maps": [str(s.labels) for s in sources],
        "anatomy_slices": scale.cases * scale.slices_per_case,
    }


def bench_synth(repeats: int = 3, size: str = "full",
                anatomy: Sequence[tuple[Path, str | None]] | None = None) -> dict[str, Any]:
    scale = scale_for(SCALES, size)
    cores = os.cpu_count() or 1
    parallel = [_study_rate(scale, cores, seed) for seed in range(repeats)]
    single = [_study_rate(scale, 1, seed) for seed in range(repeats)]
    render = [_render_rate(scale, seed) for seed in range(repeats)]
    result: dict[str, Any] = {
        "slices_per_s": statistics.median(parallel),
        "slices_per_s_min": min(parallel),
        "slices_per_s_one_process": statistics.median(single),
        "render_only_slices_per_s": statistics.median(render),
        "workers": cores,
        "cases": scale.cases,
        "slices_per_case": scale.slices_per_case,
        "repeats": repeats,
        "size": size,
        **bench_anatomy(repeats, size, anatomy),
    }
    result["lines"] = [
        f"synth, {scale.cases} cases x {scale.slices_per_case} slices, rendered and written "
        "(DICOM + PNG + 4 LabelMe JSON per slice):",
        f"  {result['slices_per_s']:.1f} slices/s median with {cores} processes (min {min(parallel):.1f}; aim ≥ 20)",
        f"  {result['slices_per_s_one_process']:.1f} slices/s median in one process",
        f"  rendering alone: {result['render_only_slices_per_s']:.1f} slices/s (one process)",
        f"anatomy source, {result['anatomy_slices']} slices rendered from {len(result['anatomy_maps'])} label maps "
        "(not written):",
        f"  {result['anatomy_slices_per_s_one_process']:.1f} slices/s median in one process "
        f"(min {result['anatomy_slices_per_s_min']:.1f}; aim ≥ 10), after building each atlas once "
        f"({result['anatomy_atlas_s']:.2f} s per map)",
    ]
    return result

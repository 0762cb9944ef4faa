"""The phantom slice the benchmarks run on: one sagittal slice of a synthetic spine (no torch, no Qt)."""

from __future__ import annotations

import numpy as np

from core.imaging.windowing import apply_window, min_max_window
from core.synthetic.generate import SynthOptions, plan_study
from core.synthetic.render import CaseRenderer


def phantom_hu(seed: int = 7) -> tuple[np.ndarray, float]:
    """One phantom sagittal slice in HU (float32), and its pixel spacing in mm."""
    planned = plan_study(SynthOptions(cases=1, seed=seed, slices_per_case=1, readers=0)).cases[0]
    hu = CaseRenderer(planned.case, np.random.default_rng(0)).render(planned.case.offsets_mm[0]).hu
    return hu.astype(np.float32), float(planned.case.spacing_mm)


def phantom_slice() -> np.ndarray:
    """The phantom slice as the model's 8-bit input (the paper's min-max rendering)."""
    hu, _ = phantom_hu()
    return apply_window(hu, min_max_window(hu))

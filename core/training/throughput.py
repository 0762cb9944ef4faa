"""Training throughput and the time spent waiting for data, measured per step and carried in the progress payload.

A training loop wraps each fetch of a batch in :meth:`StepClock.waiting` and calls :meth:`StepClock.step` after the
optimiser step (the loss was read back with ``float(loss)``, which waits for the GPU, so wall time is honest on CUDA
too). The payload gives the step's seconds, its data seconds, the items per second so far and the share of the
time spent waiting for data: when that share is high, data loading is the bottleneck.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

#: What one training item is, per component: the detector trains on slices, the classifier on patches.
UNITS = {"detector": "images", "classifier": "patches"}


@dataclass
class StepClock:
    started: float = field(default_factory=time.perf_counter)
    last: float = field(default_factory=time.perf_counter)
    data_s: float = 0.0
    step_data_s: float = 0.0
    items: int = 0

    @contextmanager
    def waiting(self) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            waited = time.perf_counter() - start
            self.step_data_s += waited
            self.data_s += waited

    def step(self, items: int) -> dict[str, float]:
        """End a step of ``items`` images (or patches); returns the payload entries."""
        now = time.perf_counter()
        step_s, data_s = now - self.last, self.step_data_s
        self.last, self.step_data_s = now, 0.0
        self.items += items
        elapsed = max(now - self.started, 1e-9)
        return {"step_s": step_s, "data_s": data_s, "items": float(items),
                "items_per_s": self.items / elapsed, "data_wait": self.data_s / elapsed}

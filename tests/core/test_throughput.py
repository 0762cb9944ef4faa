"""Training throughput: the step clock, and how the training benchmark summarises steps."""

from __future__ import annotations

import time

import pytest

from core.benchmarks.train import _summary, _train_steps
from core.progress import Progress
from core.training.throughput import StepClock


def test_the_step_clock_separates_waiting_for_data_from_computing():
    clock = StepClock()
    with clock.waiting():
        time.sleep(0.05)
    time.sleep(0.05)
    first = clock.step(4)
    assert first["items"] == 4 and first["step_s"] >= 0.1 and 0.05 <= first["data_s"] < first["step_s"]
    assert 0.3 < first["data_wait"] < 0.7 and first["items_per_s"] == pytest.approx(4 / first["step_s"], rel=0.2)
    second = clock.step(4)  # no waiting this time: the step's data time starts again from zero
    assert second["data_s"] == 0.0 and second["data_wait"] < first["data_wait"] + 1e-9


def test_the_benchmark_leaves_out_the_warm_up_step_and_takes_medians():
    steps = [{"items": 4.0, "step_s": 10.0, "data_s": 5.0}] + [
        {"items": 4.0, "step_s": s, "data_s": 0.1} for s in (2.0, 4.0, 2.0)]
    summary = _summary(steps, flops_per_item=50e9, peak_gflops=200.0)
    assert summary["steps"] == 3 and summary["batch"] == 4
    assert summary["items_per_s"] == pytest.approx(2.0) and summary["items_per_s_min"] == pytest.approx(1.0)
    assert summary["data_wait"] == pytest.approx(0.3 / 8.0)
    assert summary["achieved_gflops"] == pytest.approx(100.0) and summary["ratio"] == pytest.approx(0.5)


def test_a_training_is_stopped_after_the_steps_asked_for():
    closed = []

    def training():
        try:
            yield Progress("gather", 1, 1, "ready")
            for step in range(1, 100):
                yield Progress("train", step, 99, "", {"items": 2.0, "step_s": 1.0, "data_s": 0.0})
        finally:
            closed.append(True)

    assert len(_train_steps(training(), 3)) == 3 and closed == [True]

"""The retrain's time left (issue 19): measured on the steps and validations already done, never "about 0 s left" from
a burst of events, none until an epoch or enough steps are timed, and a component that has not started is named,
not guessed at."""

from __future__ import annotations

import pytest

from core.training.retrain_progress import MIN_TIMED_STEPS, RetrainTracker, TimeLeft


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def train(tracker: RetrainTracker, epoch: int, step: int, total: int, **metrics: float) -> None:
    tracker.update({"stage": "train", "step": step, "total": total, "message": f"epoch {epoch} loss",
                    "metrics": {"loss": 1.0, "epoch": epoch, **metrics}})


def validate(tracker: RetrainTracker, epoch: int, epochs: int) -> None:
    tracker.update({"stage": "validate", "step": epoch, "total": epochs, "message": f"epoch {epoch}: AP50",
                    "metrics": {"ap50": 0.5, "epoch": epoch}})


def test_a_burst_of_events_at_16_percent_gives_no_estimate_rather_than_zero_seconds():
    """What the reader saw: events arriving together (the clock does not move) at 16 % read "about 0 s left"."""
    clock = Clock()
    tracker = RetrainTracker(["detector", "classifier"], {"detector": 1, "classifier": 1}, clock=clock)
    clock.now = 30.0
    for step in range(1, 33):  # 32 of 100 steps of the detector's only epoch, all received at once
        train(tracker, 1, step, 100)
    assert tracker.fraction == pytest.approx(0.16)
    left = tracker.time_left()
    assert left.seconds is None and tracker.eta_seconds() is None
    assert left.text().startswith("estimating the time left") and "about" not in left.text()


def test_the_estimate_waits_for_one_epoch_then_counts_the_steps_and_validations_left():
    clock = Clock()
    tracker = RetrainTracker(["detector"], {"detector": 3}, clock=clock)
    clock.now = 100.0
    for step in range(1, 11):  # the first step warms up (10 s), the others take 2 s each, timed by the child
        train(tracker, 1, step, 10, step_s=10.0 if step == 1 else 2.0)
        assert tracker.time_left().seconds is None  # 10 steps: neither an epoch nor MIN_TIMED_STEPS yet
    clock.now = 105.0
    validate(tracker, 1, 3)  # the validation took 5 s
    left = tracker.time_left()
    # 20 steps x 2 s (the warm-up step left out of the mean) + 2 validations x 5 s
    assert left.seconds == pytest.approx(20 * 2.0 + 2 * 5.0)
    assert tracker.eta_seconds() == pytest.approx(50.0) and left.text() == "about 50 s left"
    for step in range(1, 11):
        train(tracker, 2, step, 10, step_s=2.0)
    assert tracker.time_left().seconds == pytest.approx(10 * 2.0 + 2 * 5.0)
    clock.now = 200.0
    validate(tracker, 2, 3)
    clock.now = 300.0
    validate(tracker, 3, 3)
    tracker.update({"stage": "gate", "step": 1, "total": 1, "message": "activated"})
    assert tracker.time_left() == TimeLeft(0.0, finished=True) and tracker.eta_seconds() == 0.0


def test_enough_timed_steps_give_an_estimate_within_a_long_first_epoch():
    tracker = RetrainTracker(["classifier"], {"classifier": 2}, clock=Clock())
    for step in range(1, MIN_TIMED_STEPS):
        train(tracker, 1, step, 100, step_s=0.5)
    assert tracker.time_left().seconds is None
    train(tracker, 1, MIN_TIMED_STEPS, 100, step_s=0.5)
    assert tracker.time_left().seconds == pytest.approx((200 - MIN_TIMED_STEPS) * 0.5)


def test_a_component_not_started_is_named_not_guessed_and_the_last_one_gives_the_whole_time():
    clock = Clock()
    tracker = RetrainTracker(["detector", "classifier"], {"detector": 2, "classifier": 1}, clock=clock)
    for step in (1, 2):
        train(tracker, 1, step, 2, step_s=3.0)
    clock.now = 4.0
    validate(tracker, 1, 2)
    left = tracker.time_left()
    assert left.seconds == pytest.approx(2 * 3.0 + 1 * 4.0) and left.later == ("classifier",)
    assert left.text() == "about 10 s left for the detector, then the classifier (not timed yet)"
    assert tracker.eta_seconds() is None  # the whole run's time is not known yet
    for step in (1, 2):
        train(tracker, 2, step, 2, step_s=3.0)
    validate(tracker, 2, 2)
    assert tracker.component == "classifier" and tracker.time_left().seconds is None  # its own steps come first
    assert "of the classifier" in tracker.time_left().text()
    for step in range(1, MIN_TIMED_STEPS + 1):
        train(tracker, 1, step, 40, step_s=60.0)
    assert tracker.eta_seconds() == pytest.approx((40 - MIN_TIMED_STEPS) * 60.0)
    assert tracker.time_left().text() == "about 20 min 00 s left"


def test_without_times_from_the_child_the_event_clock_is_used_and_a_restart_forgets_the_timing():
    clock = Clock()
    tracker = RetrainTracker(["detector"], {"detector": 2}, clock=clock)
    for step in (1, 2, 3, 4):
        clock.now = 7.0 * step
        train(tracker, 1, step, 4)
    clock.now = 30.0
    validate(tracker, 1, 2)
    assert tracker.time_left().seconds == pytest.approx(4 * 7.0 + 1 * 2.0)
    tracker.update({"stage": "note", "step": 0, "total": 1, "message": "out of GPU memory: retrying with batch 2"})
    assert tracker.time_left().seconds is None  # the retry's steps are another size: measured again

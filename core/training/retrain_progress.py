"""Following a retrain from its progress events (Qt-free): the overall fraction done, the time left, and the curves
of the training loss and the validation metrics, per component.

The events are the payloads the retrain child sends (``{"stage", "step", "total", "message", "metrics"}``, see
:mod:`core.training.retrain_child`). The components train one after the other (the detector, then the
classifier); a component is finished by the validation of its last epoch. ``train`` events carry ``loss`` and
``epoch``; ``validate`` events carry the epoch's metrics (detector: ``ap50``, ``fp_rate``, ``fn_rate``; classifier:
``mean_auc``, ``val_loss``). A ``note`` (for example the retry with a smaller batch after a GPU out-of-memory error)
restarts the component's curves.

The time left is measured, never guessed: the seconds of each training step (``step_s``, which the engines time in
the child, see :class:`core.training.throughput.StepClock`; else the time between two events) and of each
validation, over the work that is left of the component training now. Until that component has finished an epoch or
:data:`MIN_TIMED_STEPS` steps have been timed there is no estimate (:class:`TimeLeft` ``seconds`` None), and a
component that has not started yet is named, not guessed at.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.training.throughput import UNITS

#: The validation metric drawn for each component (the one its gate compares).
KEY_METRIC = {"detector": "ap50", "classifier": "mean_auc"}
METRIC_NAMES = {"ap50": "AP50", "mean_auc": "mean AUC", "fp_rate": "FP rate", "fn_rate": "FN rate",
                "val_loss": "validation loss"}
#: Steps of a component timed before its time left is estimated (or one whole epoch, whichever comes first).
MIN_TIMED_STEPS = 20


@dataclass
class ComponentCurves:
    """One component's curves: ``loss`` as (epoch, value) with fractional epochs, ``metrics`` per name as
    (epoch, value) after each validation."""

    loss: list[tuple[float, float]] = field(default_factory=list)
    metrics: dict[str, list[tuple[float, float]]] = field(default_factory=dict)


@dataclass(frozen=True)
class TimeLeft:
    """What is known of the time left: ``seconds`` for the component training now (None while it is not yet
    measured), and the ``later`` components, which have not started and so are not timed yet."""

    seconds: float | None
    component: str | None = None
    later: tuple[str, ...] = ()
    finished: bool = False

    def text(self) -> str:
        """``about 3 min 20 s left``, ``about 40 s left for the detector, then the classifier``, or
        ``estimating the time left (after one epoch or 20 steps of the detector)``."""
        if self.finished:
            return "done"
        if self.seconds is None:
            if self.component is None:
                return "no time estimate for this last step"
            return f"estimating the time left (after one epoch or {MIN_TIMED_STEPS} steps of the {self.component})"
        left = f"about {format_duration(self.seconds)} left"
        if self.later:
            left += f" for the {self.component}, then the {' and the '.join(self.later)} (not timed yet)"
        return left


@dataclass
class _Timing:
    """The measured seconds of one component: its training steps and its validations."""

    steps_per_epoch: int = 0
    step_seconds: list[float] = field(default_factory=list)
    validation_seconds: list[float] = field(default_factory=list)
    steps_done: int = 0  # training steps finished, over all epochs
    epochs_validated: int = 0
    last_event: float | None = None

    def step_mean(self) -> float | None:
        """The mean seconds of a step, leaving out the component's first (it includes the warm-up)."""
        timed = self.step_seconds[1:] if len(self.step_seconds) > 1 else self.step_seconds
        return sum(timed) / len(timed) if timed else None


def default_epochs(preset: str = "cpu") -> dict[str, int]:
    """The epochs of each component's preset (what a retrain uses without an ``epochs`` option)."""
    from core.training.classification_engine import PRESETS as CLASSIFIER
    from core.training.detection_engine import PRESETS as DETECTOR

    return {"detector": DETECTOR[preset].epochs, "classifier": CLASSIFIER[preset].epochs}


class RetrainTracker:
    """Feed it every event with :meth:`update`; read ``fraction``, ``time_left()`` (or ``eta_seconds()``),
    ``stage_text`` and the curves in ``curves``. ``clock`` gives the time of each event, for what the child did not
    time itself."""

    def __init__(self, components: Sequence[str], epochs: Mapping[str, int],
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not components:
            raise ValueError("a retrain trains at least one component")
        self.components = tuple(components)
        self.epochs = {c: max(1, int(epochs.get(c, 1))) for c in self.components}
        self.curves = {c: ComponentCurves() for c in self.components}
        self.notes: list[str] = []
        self.stage_text = "starting"
        self.finished = False
        self._index = 0
        self._within = 0.0  # fraction of the current component done
        self._clock = clock
        self._started = clock()
        self._timing = _Timing()

    @property
    def component(self) -> str | None:
        """The component training now (None before the first and after the last)."""
        return self.components[self._index] if self._index < len(self.components) else None

    @property
    def fraction(self) -> float:
        if self.finished:
            return 1.0
        done = min(self._index, len(self.components)) + self._within
        return min(1.0, done / len(self.components))

    def time_left(self) -> TimeLeft:
        """The time left, measured on the component training now (see the module's description)."""
        if self.finished:
            return TimeLeft(0.0, finished=True)
        component = self.component
        if component is None:
            return TimeLeft(None)
        later = self.components[self._index + 1:]
        timing = self._timing
        step = timing.step_mean()
        timed = timing.epochs_validated >= 1 or len(timing.step_seconds) >= MIN_TIMED_STEPS
        if step is None or step <= 0.0 or not timed or not timing.steps_per_epoch:  # 0 s: events in a burst
            return TimeLeft(None, component, later)
        epochs = self.epochs[component]
        steps_left = max(0, epochs * timing.steps_per_epoch - timing.steps_done)
        validations = timing.validation_seconds
        validation = sum(validations) / len(validations) if validations else 0.0
        seconds = steps_left * step + max(0, epochs - timing.epochs_validated) * validation
        return TimeLeft(seconds, component, later)

    def eta_seconds(self) -> float | None:
        """Seconds left of the whole run: None until they are measured, and while a component has not started."""
        left = self.time_left()
        return None if left.later else left.seconds

    def elapsed_seconds(self) -> float:
        return self._clock() - self._started

    def update(self, event: Mapping[str, Any]) -> None:
        stage = str(event.get("stage", ""))
        step, total = int(event.get("step") or 0), int(event.get("total") or 0)
        metrics = event.get("metrics") or {}
        message = str(event.get("message") or "")
        component = self.component
        if stage == "train" and component is not None:
            self._on_train(component, step, total, metrics)
        elif stage == "validate" and component is not None:
            self._on_validate(component, step, total, metrics)
        elif stage == "note":
            self.notes.append(message)
            if component is not None:
                self.curves[component] = ComponentCurves()
                self._within = 0.0
                self._timing = _Timing()
        elif stage == "gate" and total and step >= total:
            self.finished = True
        named = stage in ("train", "validate", "normals", "endplate")
        who = f"{component}: " if component is not None and named else ""
        self.stage_text = f"{who}{message}" if message else stage
        if stage == "train" and isinstance(metrics.get("items_per_s"), (int, float)):
            self.stage_text += (f" · {metrics['items_per_s']:.1f} {UNITS.get(component or '', 'items')}/s, "
                                f"{float(metrics.get('data_wait') or 0.0):.0%} waiting for data")

    def _on_train(self, component: str, step: int, total: int, metrics: Mapping[str, Any]) -> None:
        epoch = int(metrics.get("epoch") or 1)
        position = (epoch - 1) + (step / total if total else 0.0)
        self._within = min(1.0, position / self.epochs[component])
        loss = metrics.get("loss")
        if isinstance(loss, (int, float)):
            self.curves[component].loss.append((position, float(loss)))
        self._time_step(epoch, step, total, metrics)

    def _time_step(self, epoch: int, step: int, total: int, metrics: Mapping[str, Any]) -> None:
        timing, now = self._timing, self._clock()
        seconds = metrics.get("step_s")
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not seconds >= 0:
            # no time from the child: the time since the previous event (not for an epoch's first step, which
            # would include the validation before it)
            seconds = now - timing.last_event if timing.last_event is not None and step > 1 else None
        if seconds is not None:
            timing.step_seconds.append(float(seconds))
        if total:
            timing.steps_per_epoch = total
        timing.steps_done = (epoch - 1) * (total or timing.steps_per_epoch) + step
        timing.last_event = now

    def _on_validate(self, component: str, step: int, total: int, metrics: Mapping[str, Any]) -> None:
        if total:
            self.epochs[component] = total
        curves = self.curves[component].metrics
        for name, value in metrics.items():
            if name != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool):
                curves.setdefault(name, []).append((float(step), float(value)))
        self._within = min(1.0, step / self.epochs[component])
        timing, now = self._timing, self._clock()
        if step > timing.epochs_validated:
            if timing.last_event is not None:
                timing.validation_seconds.append(now - timing.last_event)
            timing.epochs_validated = step
            timing.steps_done = max(timing.steps_done, step * timing.steps_per_epoch)
        timing.last_event = now
        if total and step >= total:
            self._index += 1
            self._within = 0.0
            self._timing = _Timing()


def format_duration(seconds: float | None) -> str:
    """``about 3 min 20 s left`` style durations: ``42 s``, ``3 min 20 s``, ``1 h 05 min``; ``…`` when unknown."""
    if seconds is None:
        return "…"
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"

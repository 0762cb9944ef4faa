"""Following a retrain from its progress events (Qt-free): the overall fraction done, the time left, and the curves
of the training loss and the validation metrics, per component.

The events are the payloads the retrain child sends (``{"stage", "step", "total", "message", "metrics"}``, see
:mod:`core.training.retrain_child`). The components train one after the other (the detector, then the
classifier); a component is finished by the validation of its last epoch. ``train`` events carry ``loss`` and
``epoch``; ``validate`` events carry the epoch's metrics (detector: ``ap50``, ``fp_rate``, ``fn_rate``; classifier:
``mean_auc``, ``val_loss``). A ``note`` (for example the retry with a smaller batch after a GPU out-of-memory error)
restarts the component's curves.
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
_MIN_FRACTION_FOR_ETA = 0.02


@dataclass
class ComponentCurves:
    """One component's curves: ``loss`` as (epoch, value) with fractional epochs, ``metrics`` per name as
    (epoch, value) after each validation."""

    loss: list[tuple[float, float]] = field(default_factory=list)
    metrics: dict[str, list[tuple[float, float]]] = field(default_factory=dict)


def default_epochs(preset: str = "cpu") -> dict[str, int]:
    """The epochs of each component's preset (what a retrain uses without an ``epochs`` option)."""
    from core.training.classification_engine import PRESETS as CLASSIFIER
    from core.training.detection_engine import PRESETS as DETECTOR

    return {"detector": DETECTOR[preset].epochs, "classifier": CLASSIFIER[preset].epochs}


class RetrainTracker:
    """Feed it every event with :meth:`update`; read ``fraction``, ``eta_seconds()``, ``stage_text`` and the
    curves in ``curves``."""

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
        self._training_since: float | None = None
        self._fraction_at_training = 0.0

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

    def eta_seconds(self) -> float | None:
        """Seconds left, from the training speed so far (None until enough is done to say)."""
        if self.finished:
            return 0.0
        if self._training_since is None:
            return None
        progress = self.fraction - self._fraction_at_training
        if progress < _MIN_FRACTION_FOR_ETA:
            return None
        elapsed = self._clock() - self._training_since
        return elapsed * (1.0 - self.fraction) / progress

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
        elif stage == "gate" and total and step >= total:
            self.finished = True
        named = stage in ("train", "validate", "normals", "endplate")
        who = f"{component}: " if component is not None and named else ""
        self.stage_text = f"{who}{message}" if message else stage
        if stage == "train" and isinstance(metrics.get("items_per_s"), (int, float)):
            self.stage_text += (f" · {metrics['items_per_s']:.1f} {UNITS.get(component or '', 'items')}/s, "
                                f"{float(metrics.get('data_wait') or 0.0):.0%} waiting for data")

    def _on_train(self, component: str, step: int, total: int, metrics: Mapping[str, Any]) -> None:
        if self._training_since is None:
            self._training_since, self._fraction_at_training = self._clock(), self.fraction
        epoch = int(metrics.get("epoch") or 1)
        position = (epoch - 1) + (step / total if total else 0.0)
        self._within = min(1.0, position / self.epochs[component])
        loss = metrics.get("loss")
        if isinstance(loss, (int, float)):
            self.curves[component].loss.append((position, float(loss)))

    def _on_validate(self, component: str, step: int, total: int, metrics: Mapping[str, Any]) -> None:
        if total:
            self.epochs[component] = total
        curves = self.curves[component].metrics
        for name, value in metrics.items():
            if name != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool):
                curves.setdefault(name, []).append((float(step), float(value)))
        self._within = min(1.0, step / self.epochs[component])
        if total and step >= total:
            self._index += 1
            self._within = 0.0


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

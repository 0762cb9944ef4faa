"""The one training loop the detector, the classifier and the endplate head share, after torchvision's
``references/detection/engine.py``: :func:`fit` runs the epochs, each a model's own ``train_one_epoch`` (a generator
of progress) followed by its ``evaluate``, and hands the validation metrics to a :class:`TrainingRun`, which keeps
the best epoch and writes the checkpoint a run resumes from.

The steps the models share are here too: :func:`train_one_epoch` for a model trained by minibatches under mixed
precision (fetch a batch, timed as data wait; the loss under autocast; the non-finite check; the scaled backward pass,
optional gradient clipping, the optimiser and scheduler steps; the progress with its throughput), and
:func:`finite` and :func:`optimizer_step` for a loop of its own. A non-finite loss raises :class:`TrainingError`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from core.errors import TrainingError
from core.progress import Progress, ProgressGenerator
from core.training.checkpoints import TrainingRun
from core.training.throughput import StepClock

log = logging.getLogger(__name__)

LOWER_THE_LR = "lower the learning rate or check the annotations"


@dataclass(frozen=True)
class Evaluation:
    """One epoch's validation: the metrics recorded in the history, and tensors kept with the best epoch's weights."""

    metrics: dict[str, Any]
    keep: dict[str, torch.Tensor] = field(default_factory=dict)


def fit(
    run: TrainingRun,
    train_one_epoch: Callable[[int], Iterator[Progress]],
    evaluate: Callable[[int], Evaluation],
    *,
    epochs: int,
    settings: Mapping[str, Any],
    report: Callable[[int, dict[str, Any]], Progress | None] = lambda epoch, metrics: None,
) -> ProgressGenerator[TrainingRun]:
    """Train epochs ``run.first_epoch`` (0, or where a resumed run stopped) to ``epochs - 1``: each is
    ``train_one_epoch(epoch)`` then ``evaluate(epoch)``, recorded by ``run`` (best epoch, checkpoint with
    ``settings``); ``report(epoch, recorded metrics)`` is the progress event after each validation, if any.
    Returns ``run``, whose ``best``, ``best_state``, ``best_extra`` and ``history`` the caller publishes."""
    if run.resumed:
        log.info("resuming %s after epoch %d", run.work.name if run.work else "a run", run.first_epoch)
    for epoch in range(run.first_epoch, epochs):
        yield from train_one_epoch(epoch)
        evaluation = evaluate(epoch)
        run.end_epoch(epoch, evaluation.metrics, settings, **evaluation.keep)
        event = report(epoch, run.history[-1])
        if event is not None:
            yield event
    return run


def finite(loss: torch.Tensor, problem: Callable[[float], str]) -> float:
    """The loss as a float; raises TrainingError(``problem(value)``) when it is not finite."""
    value = float(loss.detach())
    if not math.isfinite(value):
        raise TrainingError(problem(value))
    return value


def optimizer_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None,
                   scheduler: Any = None, *, clip: float | None = None,
                   params: list[torch.nn.Parameter] | None = None) -> None:
    """Backward pass (scaled under mixed precision), optional clipping of the gradients' norm, optimiser step."""
    optimizer.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
        optimizer.step()
    else:
        scaler.scale(loss).backward()
        if clip is not None:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params if params is not None else [], clip)
        scaler.step(optimizer)
        scaler.update()
    if scheduler is not None:
        scheduler.step()


@dataclass(frozen=True)
class Step:
    """What a model's forward pass gives the shared epoch: the loss, the items in the batch and, for the error
    message, the loss's parts."""

    loss: torch.Tensor
    items: int
    parts: Mapping[str, torch.Tensor] | None = None


def train_one_epoch(
    model: torch.nn.Module,
    batches: Iterator[Any],
    steps: int,
    forward: Callable[[Any], Step],
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: torch.amp.GradScaler,
    autocast: Callable[[], AbstractContextManager[Any]],
    *,
    epoch: int,
    epochs: int,
    clip: float | None = None,
) -> Iterator[Progress]:
    """One epoch of ``steps`` minibatches from ``batches`` (fetching one is timed as waiting for data), each
    ``forward`` under ``autocast``, checked, stepped; a ``train`` progress event per step with the loss, learning
    rate, epoch and throughput."""
    model.train()
    params = [p for p in model.parameters() if p.requires_grad] if clip is not None else None
    running: list[float] = []
    clock = StepClock()
    for step in range(1, steps + 1):
        with clock.waiting():
            batch = next(batches)
        with autocast():
            out = forward(batch)

        def problem(value: float, step: int = step, out: Step = out) -> str:
            parts = ", ".join(f"{k} {float(v.detach()):.3g}" for k, v in out.parts.items()) if out.parts else ""
            return (f"the loss became {value} at epoch {epoch + 1}, step {step}{f' ({parts})' if parts else ''}; "
                    f"{LOWER_THE_LR}")

        value = finite(out.loss, problem)
        optimizer_step(out.loss, optimizer, scaler, scheduler, clip=clip, params=params)
        running.append(value)
        yield Progress("train", step, steps, f"epoch {epoch + 1}/{epochs} loss {np.mean(running[-20:]):.3f}",
                       {"loss": value, "lr": optimizer.param_groups[0]["lr"], "epoch": epoch + 1,
                        **clock.step(out.items)})
